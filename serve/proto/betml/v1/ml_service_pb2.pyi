import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MarketType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKET_TYPE_UNSPECIFIED: _ClassVar[MarketType]
    MARKET_TYPE_WIN: _ClassVar[MarketType]
    MARKET_TYPE_MATCH_ODDS: _ClassVar[MarketType]
    MARKET_TYPE_MONEYLINE: _ClassVar[MarketType]
    MARKET_TYPE_SPREAD: _ClassVar[MarketType]
    MARKET_TYPE_TOTAL: _ClassVar[MarketType]

class OddsKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ODDS_KIND_UNSPECIFIED: _ClassVar[OddsKind]
    ODDS_KIND_OPEN: _ClassVar[OddsKind]
    ODDS_KIND_PRE_CLOSE: _ClassVar[OddsKind]
    ODDS_KIND_CLOSE: _ClassVar[OddsKind]

class SignalTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_TIER_UNSPECIFIED: _ClassVar[SignalTier]
    SIGNAL_TIER_A: _ClassVar[SignalTier]
    SIGNAL_TIER_B: _ClassVar[SignalTier]
    SIGNAL_TIER_C: _ClassVar[SignalTier]
    SIGNAL_TIER_D: _ClassVar[SignalTier]

class BetOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BET_OUTCOME_UNSPECIFIED: _ClassVar[BetOutcome]
    BET_OUTCOME_WON: _ClassVar[BetOutcome]
    BET_OUTCOME_LOST: _ClassVar[BetOutcome]
    BET_OUTCOME_VOID: _ClassVar[BetOutcome]
    BET_OUTCOME_PENDING: _ClassVar[BetOutcome]

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_LOW: _ClassVar[RiskLevel]
    RISK_LEVEL_MEDIUM: _ClassVar[RiskLevel]
    RISK_LEVEL_HIGH: _ClassVar[RiskLevel]
    RISK_LEVEL_VERY_HIGH: _ClassVar[RiskLevel]

class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVING_STATUS_UNSPECIFIED: _ClassVar[ServingStatus]
    SERVING_STATUS_SERVING: _ClassVar[ServingStatus]
    SERVING_STATUS_DEGRADED: _ClassVar[ServingStatus]
    SERVING_STATUS_NOT_SERVING: _ClassVar[ServingStatus]

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_LOADING: _ClassVar[ModelState]
    MODEL_STATE_LOADED: _ClassVar[ModelState]
    MODEL_STATE_FAILED: _ClassVar[ModelState]
MARKET_TYPE_UNSPECIFIED: MarketType
MARKET_TYPE_WIN: MarketType
MARKET_TYPE_MATCH_ODDS: MarketType
MARKET_TYPE_MONEYLINE: MarketType
MARKET_TYPE_SPREAD: MarketType
MARKET_TYPE_TOTAL: MarketType
ODDS_KIND_UNSPECIFIED: OddsKind
ODDS_KIND_OPEN: OddsKind
ODDS_KIND_PRE_CLOSE: OddsKind
ODDS_KIND_CLOSE: OddsKind
SIGNAL_TIER_UNSPECIFIED: SignalTier
SIGNAL_TIER_A: SignalTier
SIGNAL_TIER_B: SignalTier
SIGNAL_TIER_C: SignalTier
SIGNAL_TIER_D: SignalTier
BET_OUTCOME_UNSPECIFIED: BetOutcome
BET_OUTCOME_WON: BetOutcome
BET_OUTCOME_LOST: BetOutcome
BET_OUTCOME_VOID: BetOutcome
BET_OUTCOME_PENDING: BetOutcome
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_LOW: RiskLevel
RISK_LEVEL_MEDIUM: RiskLevel
RISK_LEVEL_HIGH: RiskLevel
RISK_LEVEL_VERY_HIGH: RiskLevel
SERVING_STATUS_UNSPECIFIED: ServingStatus
SERVING_STATUS_SERVING: ServingStatus
SERVING_STATUS_DEGRADED: ServingStatus
SERVING_STATUS_NOT_SERVING: ServingStatus
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_LOADING: ModelState
MODEL_STATE_LOADED: ModelState
MODEL_STATE_FAILED: ModelState

class Event(_message.Message):
    __slots__ = ("event_key", "sport", "competition", "season", "starts_at", "matchup", "race", "markets")
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SPORT_FIELD_NUMBER: _ClassVar[int]
    COMPETITION_FIELD_NUMBER: _ClassVar[int]
    SEASON_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    MATCHUP_FIELD_NUMBER: _ClassVar[int]
    RACE_FIELD_NUMBER: _ClassVar[int]
    MARKETS_FIELD_NUMBER: _ClassVar[int]
    event_key: str
    sport: str
    competition: str
    season: str
    starts_at: _timestamp_pb2.Timestamp
    matchup: Matchup
    race: Race
    markets: _containers.RepeatedCompositeFieldContainer[Market]
    def __init__(self, event_key: _Optional[str] = ..., sport: _Optional[str] = ..., competition: _Optional[str] = ..., season: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., matchup: _Optional[_Union[Matchup, _Mapping]] = ..., race: _Optional[_Union[Race, _Mapping]] = ..., markets: _Optional[_Iterable[_Union[Market, _Mapping]]] = ...) -> None: ...

class Matchup(_message.Message):
    __slots__ = ("home", "away")
    HOME_FIELD_NUMBER: _ClassVar[int]
    AWAY_FIELD_NUMBER: _ClassVar[int]
    home: str
    away: str
    def __init__(self, home: _Optional[str] = ..., away: _Optional[str] = ...) -> None: ...

class Race(_message.Message):
    __slots__ = ("runners",)
    RUNNERS_FIELD_NUMBER: _ClassVar[int]
    runners: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, runners: _Optional[_Iterable[str]] = ...) -> None: ...

class Market(_message.Message):
    __slots__ = ("market_key", "type", "line", "selections")
    MARKET_KEY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    market_key: str
    type: MarketType
    line: float
    selections: _containers.RepeatedCompositeFieldContainer[Selection]
    def __init__(self, market_key: _Optional[str] = ..., type: _Optional[_Union[MarketType, str]] = ..., line: _Optional[float] = ..., selections: _Optional[_Iterable[_Union[Selection, _Mapping]]] = ...) -> None: ...

class Selection(_message.Message):
    __slots__ = ("name", "participant", "odds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    ODDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    participant: str
    odds: _containers.RepeatedCompositeFieldContainer[OddsQuote]
    def __init__(self, name: _Optional[str] = ..., participant: _Optional[str] = ..., odds: _Optional[_Iterable[_Union[OddsQuote, _Mapping]]] = ...) -> None: ...

class OddsQuote(_message.Message):
    __slots__ = ("bookmaker", "kind", "price", "captured_at")
    BOOKMAKER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    bookmaker: str
    kind: OddsKind
    price: float
    captured_at: _timestamp_pb2.Timestamp
    def __init__(self, bookmaker: _Optional[str] = ..., kind: _Optional[_Union[OddsKind, str]] = ..., price: _Optional[float] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StakingOptions(_message.Message):
    __slots__ = ("bankroll", "kelly_multiplier", "min_edge", "max_stake_fraction", "bookmakers", "include_agent_stake")
    BANKROLL_FIELD_NUMBER: _ClassVar[int]
    KELLY_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MIN_EDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_STAKE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    BOOKMAKERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_AGENT_STAKE_FIELD_NUMBER: _ClassVar[int]
    bankroll: float
    kelly_multiplier: float
    min_edge: float
    max_stake_fraction: float
    bookmakers: _containers.RepeatedScalarFieldContainer[str]
    include_agent_stake: bool
    def __init__(self, bankroll: _Optional[float] = ..., kelly_multiplier: _Optional[float] = ..., min_edge: _Optional[float] = ..., max_stake_fraction: _Optional[float] = ..., bookmakers: _Optional[_Iterable[str]] = ..., include_agent_stake: _Optional[bool] = ...) -> None: ...

class GetPredictionRequest(_message.Message):
    __slots__ = ("raw_event", "event_key", "market_key", "staking", "model_name", "model_alias")
    RAW_EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    MARKET_KEY_FIELD_NUMBER: _ClassVar[int]
    STAKING_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    raw_event: Event
    event_key: str
    market_key: str
    staking: StakingOptions
    model_name: str
    model_alias: str
    def __init__(self, raw_event: _Optional[_Union[Event, _Mapping]] = ..., event_key: _Optional[str] = ..., market_key: _Optional[str] = ..., staking: _Optional[_Union[StakingOptions, _Mapping]] = ..., model_name: _Optional[str] = ..., model_alias: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "alias", "feature_schema_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    alias: str
    feature_schema_version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., alias: _Optional[str] = ..., feature_schema_version: _Optional[str] = ...) -> None: ...

class SelectionPrediction(_message.Message):
    __slots__ = ("selection", "probability", "fair_odds", "odds", "bookmaker", "expected_value", "kelly_fraction", "stake_fraction", "recommended_stake", "minimum_acceptable_odds", "tier", "is_bet", "agent_stake_fraction", "agent_stake")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    FAIR_ODDS_FIELD_NUMBER: _ClassVar[int]
    ODDS_FIELD_NUMBER: _ClassVar[int]
    BOOKMAKER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    KELLY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    STAKE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_STAKE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_ACCEPTABLE_ODDS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    IS_BET_FIELD_NUMBER: _ClassVar[int]
    AGENT_STAKE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    AGENT_STAKE_FIELD_NUMBER: _ClassVar[int]
    selection: str
    probability: float
    fair_odds: float
    odds: float
    bookmaker: str
    expected_value: float
    kelly_fraction: float
    stake_fraction: float
    recommended_stake: float
    minimum_acceptable_odds: float
    tier: SignalTier
    is_bet: bool
    agent_stake_fraction: float
    agent_stake: float
    def __init__(self, selection: _Optional[str] = ..., probability: _Optional[float] = ..., fair_odds: _Optional[float] = ..., odds: _Optional[float] = ..., bookmaker: _Optional[str] = ..., expected_value: _Optional[float] = ..., kelly_fraction: _Optional[float] = ..., stake_fraction: _Optional[float] = ..., recommended_stake: _Optional[float] = ..., minimum_acceptable_odds: _Optional[float] = ..., tier: _Optional[_Union[SignalTier, str]] = ..., is_bet: _Optional[bool] = ..., agent_stake_fraction: _Optional[float] = ..., agent_stake: _Optional[float] = ...) -> None: ...

class GetPredictionResponse(_message.Message):
    __slots__ = ("event_key", "market_key", "selections", "model", "agent_model", "predicted_at", "prediction_id")
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    MARKET_KEY_FIELD_NUMBER: _ClassVar[int]
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    AGENT_MODEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_AT_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    event_key: str
    market_key: str
    selections: _containers.RepeatedCompositeFieldContainer[SelectionPrediction]
    model: ModelInfo
    agent_model: ModelInfo
    predicted_at: _timestamp_pb2.Timestamp
    prediction_id: str
    def __init__(self, event_key: _Optional[str] = ..., market_key: _Optional[str] = ..., selections: _Optional[_Iterable[_Union[SelectionPrediction, _Mapping]]] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., agent_model: _Optional[_Union[ModelInfo, _Mapping]] = ..., predicted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prediction_id: _Optional[str] = ...) -> None: ...

class BatchPredictRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[GetPredictionRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[GetPredictionRequest, _Mapping]]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "field_violations")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class BatchPredictResult(_message.Message):
    __slots__ = ("prediction", "error")
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    prediction: GetPredictionResponse
    error: ItemError
    def __init__(self, prediction: _Optional[_Union[GetPredictionResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class BatchPredictResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchPredictResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchPredictResult, _Mapping]]] = ...) -> None: ...

class Strategy(_message.Message):
    __slots__ = ("id", "name", "version", "description", "parameters")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: str
    description: str
    parameters: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class BacktestSummary(_message.Message):
    __slots__ = ("period_start", "period_end", "initial_capital", "final_capital", "total_bets", "win_rate", "roi", "profit")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    FINAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BETS_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    initial_capital: float
    final_capital: float
    total_bets: int
    win_rate: float
    roi: float
    profit: float
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., initial_capital: _Optional[float] = ..., final_capital: _Optional[float] = ..., total_bets: _Optional[int] = ..., win_rate: _Optional[float] = ..., roi: _Optional[float] = ..., profit: _Optional[float] = ...) -> None: ...

class MethodMetrics(_message.Message):
    __slots__ = ("sharpe_ratio", "sortino_ratio", "max_drawdown", "roi", "profit_factor", "win_rate")
    SHARPE_RATIO_FIELD_NUMBER: _ClassVar[int]
    SORTINO_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: float
    roi: float
    profit_factor: float
    win_rate: float
    def __init__(self, sharpe_ratio: _Optional[float] = ..., sortino_ratio: _Optional[float] = ..., max_drawdown: _Optional[float] = ..., roi: _Optional[float] = ..., profit_factor: _Optional[float] = ..., win_rate: _Optional[float] = ...) -> None: ...

class MonteCarloMetrics(_message.Message):
    __slots__ = ("sharpe_ratio", "sortino_ratio", "max_drawdown", "roi", "profit_factor", "win_rate", "simulations", "final_equity_percentiles", "probability_of_profit", "probability_of_ruin")
    class FinalEquityPercentilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SHARPE_RATIO_FIELD_NUMBER: _ClassVar[int]
    SORTINO_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    FINAL_EQUITY_PERCENTILES_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_OF_PROFIT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_OF_RUIN_FIELD_NUMBER: _ClassVar[int]
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: float
    roi: float
    profit_factor: float
    win_rate: float
    simulations: int
    final_equity_percentiles: _containers.ScalarMap[str, float]
    probability_of_profit: float
    probability_of_ruin: float
    def __init__(self, sharpe_ratio: _Optional[float] = ..., sortino_ratio: _Optional[float] = ..., max_drawdown: _Optional[float] = ..., roi: _Optional[float] = ..., profit_factor: _Optional[float] = ..., win_rate: _Optional[float] = ..., simulations: _Optional[int] = ..., final_equity_percentiles: _Optional[_Mapping[str, float]] = ..., probability_of_profit: _Optional[float] = ..., probability_of_ruin: _Optional[float] = ...) -> None: ...

class WalkForwardWindow(_message.Message):
    __slots__ = ("train_start", "train_end", "test_start", "test_end", "bets", "roi", "profit", "sharpe_ratio")
    TRAIN_START_FIELD_NUMBER: _ClassVar[int]
    TRAIN_END_FIELD_NUMBER: _ClassVar[int]
    TEST_START_FIELD_NUMBER: _ClassVar[int]
    TEST_END_FIELD_NUMBER: _ClassVar[int]
    BETS_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    SHARPE_RATIO_FIELD_NUMBER: _ClassVar[int]
    train_start: _timestamp_pb2.Timestamp
    train_end: _timestamp_pb2.Timestamp
    test_start: _timestamp_pb2.Timestamp
    test_end: _timestamp_pb2.Timestamp
    bets: int
    roi: float
    profit: float
    sharpe_ratio: float
    def __init__(self, train_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bets: _Optional[int] = ..., roi: _Optional[float] = ..., profit: _Optional[float] = ..., sharpe_ratio: _Optional[float] = ...) -> None: ...

class WalkForwardMetrics(_message.Message):
    __slots__ = ("sharpe_ratio", "sortino_ratio", "max_drawdown", "roi", "profit_factor", "win_rate", "windows")
    SHARPE_RATIO_FIELD_NUMBER: _ClassVar[int]
    SORTINO_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: float
    roi: float
    profit_factor: float
    win_rate: float
    windows: _containers.RepeatedCompositeFieldContainer[WalkForwardWindow]
    def __init__(self, sharpe_ratio: _Optional[float] = ..., sortino_ratio: _Optional[float] = ..., max_drawdown: _Optional[float] = ..., roi: _Optional[float] = ..., profit_factor: _Optional[float] = ..., win_rate: _Optional[float] = ..., windows: _Optional[_Iterable[_Union[WalkForwardWindow, _Mapping]]] = ...) -> None: ...

class BacktestMetrics(_message.Message):
    __slots__ = ("historical", "monte_carlo", "walk_forward")
    HISTORICAL_FIELD_NUMBER: _ClassVar[int]
    MONTE_CARLO_FIELD_NUMBER: _ClassVar[int]
    WALK_FORWARD_FIELD_NUMBER: _ClassVar[int]
    historical: MethodMetrics
    monte_carlo: MonteCarloMetrics
    walk_forward: WalkForwardMetrics
    def __init__(self, historical: _Optional[_Union[MethodMetrics, _Mapping]] = ..., monte_carlo: _Optional[_Union[MonteCarloMetrics, _Mapping]] = ..., walk_forward: _Optional[_Union[WalkForwardMetrics, _Mapping]] = ...) -> None: ...

class BacktestBet(_message.Message):
    __slots__ = ("placed_at", "event_ref", "market", "selection", "odds", "confidence", "expected_value", "stake", "outcome", "pnl")
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_REF_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    ODDS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    placed_at: _timestamp_pb2.Timestamp
    event_ref: str
    market: str
    selection: str
    odds: float
    confidence: float
    expected_value: float
    stake: float
    outcome: BetOutcome
    pnl: float
    def __init__(self, placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_ref: _Optional[str] = ..., market: _Optional[str] = ..., selection: _Optional[str] = ..., odds: _Optional[float] = ..., confidence: _Optional[float] = ..., expected_value: _Optional[float] = ..., stake: _Optional[float] = ..., outcome: _Optional[_Union[BetOutcome, str]] = ..., pnl: _Optional[float] = ...) -> None: ...

class EquityPoint(_message.Message):
    __slots__ = ("timestamp", "equity")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    equity: float
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., equity: _Optional[float] = ...) -> None: ...

class RiskProfile(_message.Message):
    __slots__ = ("max_drawdown", "var_95", "volatility", "kelly_fraction", "risk_level")
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    VAR_95_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_FIELD_NUMBER: _ClassVar[int]
    KELLY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    max_drawdown: float
    var_95: float
    volatility: float
    kelly_fraction: float
    risk_level: RiskLevel
    def __init__(self, max_drawdown: _Optional[float] = ..., var_95: _Optional[float] = ..., volatility: _Optional[float] = ..., kelly_fraction: _Optional[float] = ..., risk_level: _Optional[_Union[RiskLevel, str]] = ...) -> None: ...

class BacktestExport(_message.Message):
    __slots__ = ("schema_version", "exported_at", "strategy", "summary", "metrics", "bets", "equity_curve", "risk_profile")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BETS_FIELD_NUMBER: _ClassVar[int]
    EQUITY_CURVE_FIELD_NUMBER: _ClassVar[int]
    RISK_PROFILE_FIELD_NUMBER: _ClassVar[int]
    schema_version: str
    exported_at: _timestamp_pb2.Timestamp
    strategy: Strategy
    summary: BacktestSummary
    metrics: BacktestMetrics
    bets: _containers.RepeatedCompositeFieldContainer[BacktestBet]
    equity_curve: _containers.RepeatedCompositeFieldContainer[EquityPoint]
    risk_profile: RiskProfile
    def __init__(self, schema_version: _Optional[str] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., strategy: _Optional[_Union[Strategy, _Mapping]] = ..., summary: _Optional[_Union[BacktestSummary, _Mapping]] = ..., metrics: _Optional[_Union[BacktestMetrics, _Mapping]] = ..., bets: _Optional[_Iterable[_Union[BacktestBet, _Mapping]]] = ..., equity_curve: _Optional[_Iterable[_Union[EquityPoint, _Mapping]]] = ..., risk_profile: _Optional[_Union[RiskProfile, _Mapping]] = ...) -> None: ...

class BacktestRunKey(_message.Message):
    __slots__ = ("strategy_id", "strategy_version", "period_start", "period_end")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    strategy_version: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, strategy_id: _Optional[str] = ..., strategy_version: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitBacktestFeedbackRequest(_message.Message):
    __slots__ = ("export",)
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    export: BacktestExport
    def __init__(self, export: _Optional[_Union[BacktestExport, _Mapping]] = ...) -> None: ...

class SubmitBacktestFeedbackResponse(_message.Message):
    __slots__ = ("run", "runs_added", "runs_skipped", "bets_added", "equity_points_added")
    RUN_FIELD_NUMBER: _ClassVar[int]
    RUNS_ADDED_FIELD_NUMBER: _ClassVar[int]
    RUNS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BETS_ADDED_FIELD_NUMBER: _ClassVar[int]
    EQUITY_POINTS_ADDED_FIELD_NUMBER: _ClassVar[int]
    run: BacktestRunKey
    runs_added: int
    runs_skipped: int
    bets_added: int
    equity_points_added: int
    def __init__(self, run: _Optional[_Union[BacktestRunKey, _Mapping]] = ..., runs_added: _Optional[int] = ..., runs_skipped: _Optional[int] = ..., bets_added: _Optional[int] = ..., equity_points_added: _Optional[int] = ...) -> None: ...

class StrategyBacktest(_message.Message):
    __slots__ = ("strategy", "summary", "metrics", "risk_profile", "bets")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RISK_PROFILE_FIELD_NUMBER: _ClassVar[int]
    BETS_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    summary: BacktestSummary
    metrics: BacktestMetrics
    risk_profile: RiskProfile
    bets: _containers.RepeatedCompositeFieldContainer[BacktestBet]
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ..., summary: _Optional[_Union[BacktestSummary, _Mapping]] = ..., metrics: _Optional[_Union[BacktestMetrics, _Mapping]] = ..., risk_profile: _Optional[_Union[RiskProfile, _Mapping]] = ..., bets: _Optional[_Iterable[_Union[BacktestBet, _Mapping]]] = ...) -> None: ...

class EvaluateStrategyRequest(_message.Message):
    __slots__ = ("raw_backtest", "stored_run")
    RAW_BACKTEST_FIELD_NUMBER: _ClassVar[int]
    STORED_RUN_FIELD_NUMBER: _ClassVar[int]
    raw_backtest: StrategyBacktest
    stored_run: BacktestRunKey
    def __init__(self, raw_backtest: _Optional[_Union[StrategyBacktest, _Mapping]] = ..., stored_run: _Optional[_Union[BacktestRunKey, _Mapping]] = ...) -> None: ...

class DrawdownDistribution(_message.Message):
    __slots__ = ("samples", "mean", "p50", "p95", "p99", "historical")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    HISTORICAL_FIELD_NUMBER: _ClassVar[int]
    samples: int
    mean: float
    p50: float
    p95: float
    p99: float
    historical: float
    def __init__(self, samples: _Optional[int] = ..., mean: _Optional[float] = ..., p50: _Optional[float] = ..., p95: _Optional[float] = ..., p99: _Optional[float] = ..., historical: _Optional[float] = ...) -> None: ...

class EvaluateStrategyResponse(_message.Message):
    __slots__ = ("score", "risk_adjusted_return", "drawdown", "overfit_score", "warnings", "scoring_version")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RISK_ADJUSTED_RETURN_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    OVERFIT_SCORE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SCORING_VERSION_FIELD_NUMBER: _ClassVar[int]
    score: float
    risk_adjusted_return: float
    drawdown: DrawdownDistribution
    overfit_score: float
    warnings: _containers.RepeatedScalarFieldContainer[str]
    scoring_version: str
    def __init__(self, score: _Optional[float] = ..., risk_adjusted_return: _Optional[float] = ..., drawdown: _Optional[_Union[DrawdownDistribution, _Mapping]] = ..., overfit_score: _Optional[float] = ..., warnings: _Optional[_Iterable[str]] = ..., scoring_version: _Optional[str] = ...) -> None: ...

class StrategyConstraints(_message.Message):
    __slots__ = ("sport", "competition", "market_type", "max_drawdown", "min_bets", "min_odds", "max_odds", "max_stake_fraction", "bookmakers", "period_start", "period_end")
    SPORT_FIELD_NUMBER: _ClassVar[int]
    COMPETITION_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    MIN_BETS_FIELD_NUMBER: _ClassVar[int]
    MIN_ODDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ODDS_FIELD_NUMBER: _ClassVar[int]
    MAX_STAKE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    BOOKMAKERS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    sport: str
    competition: str
    market_type: MarketType
    max_drawdown: float
    min_bets: int
    min_odds: float
    max_odds: float
    max_stake_fraction: float
    bookmakers: _containers.RepeatedScalarFieldContainer[str]
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, sport: _Optional[str] = ..., competition: _Optional[str] = ..., market_type: _Optional[_Union[MarketType, str]] = ..., max_drawdown: _Optional[float] = ..., min_bets: _Optional[int] = ..., min_odds: _Optional[float] = ..., max_odds: _Optional[float] = ..., max_stake_fraction: _Optional[float] = ..., bookmakers: _Optional[_Iterable[str]] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GenerateStrategyRequest(_message.Message):
    __slots__ = ("constraints", "max_proposals")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    constraints: StrategyConstraints
    max_proposals: int
    def __init__(self, constraints: _Optional[_Union[StrategyConstraints, _Mapping]] = ..., max_proposals: _Optional[int] = ...) -> None: ...

class SupportingBacktest(_message.Message):
    __slots__ = ("label", "summary", "metrics", "risk_profile")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RISK_PROFILE_FIELD_NUMBER: _ClassVar[int]
    label: str
    summary: BacktestSummary
    metrics: BacktestMetrics
    risk_profile: RiskProfile
    def __init__(self, label: _Optional[str] = ..., summary: _Optional[_Union[BacktestSummary, _Mapping]] = ..., metrics: _Optional[_Union[BacktestMetrics, _Mapping]] = ..., risk_profile: _Optional[_Union[RiskProfile, _Mapping]] = ...) -> None: ...

class StrategyProposal(_message.Message):
    __slots__ = ("strategy", "score", "model", "backtests")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKTESTS_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    score: float
    model: ModelInfo
    backtests: _containers.RepeatedCompositeFieldContainer[SupportingBacktest]
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ..., score: _Optional[float] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., backtests: _Optional[_Iterable[_Union[SupportingBacktest, _Mapping]]] = ...) -> None: ...

class GenerateStrategyResponse(_message.Message):
    __slots__ = ("proposals", "unmet_constraints")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    UNMET_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[StrategyProposal]
    unmet_constraints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, proposals: _Optional[_Iterable[_Union[StrategyProposal, _Mapping]]] = ..., unmet_constraints: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFeaturesRequest(_message.Message):
    __slots__ = ("raw_event", "event_key", "market_keys")
    RAW_EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    MARKET_KEYS_FIELD_NUMBER: _ClassVar[int]
    raw_event: Event
    event_key: str
    market_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, raw_event: _Optional[_Union[Event, _Mapping]] = ..., event_key: _Optional[str] = ..., market_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class SelectionFeatures(_message.Message):
    __slots__ = ("market_key", "selection", "values")
    MARKET_KEY_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    market_key: str
    selection: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, market_key: _Optional[str] = ..., selection: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class GetFeaturesResponse(_message.Message):
    __slots__ = ("event_key", "feature_schema_version", "feature_names", "selections")
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    event_key: str
    feature_schema_version: str
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    selections: _containers.RepeatedCompositeFieldContainer[SelectionFeatures]
    def __init__(self, event_key: _Optional[str] = ..., feature_schema_version: _Optional[str] = ..., feature_names: _Optional[_Iterable[str]] = ..., selections: _Optional[_Iterable[_Union[SelectionFeatures, _Mapping]]] = ...) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelHealth(_message.Message):
    __slots__ = ("name", "alias", "version", "state", "loading_version", "message", "loaded_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOADING_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: str
    state: ModelState
    loading_version: str
    message: str
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., loading_version: _Optional[str] = ..., message: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ("status", "models", "service_version", "feature_schema_version", "feature_states")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_STATES_FIELD_NUMBER: _ClassVar[int]
    status: ServingStatus
    models: _containers.RepeatedCompositeFieldContainer[ModelHealth]
    service_version: str
    feature_schema_version: str
    feature_states: _containers.RepeatedCompositeFieldContainer[FeatureStateHealth]
    def __init__(self, status: _Optional[_Union[ServingStatus, str]] = ..., models: _Optional[_Iterable[_Union[ModelHealth, _Mapping]]] = ..., service_version: _Optional[str] = ..., feature_schema_version: _Optional[str] = ..., feature_states: _Optional[_Iterable[_Union[FeatureStateHealth, _Mapping]]] = ...) -> None: ...

class FeatureStateHealth(_message.Message):
    __slots__ = ("sport", "backend", "schema_version", "applied_events", "last_event_key", "last_starts_at", "participants", "watermark", "version")
    SPORT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    sport: str
    backend: str
    schema_version: str
    applied_events: int
    last_event_key: str
    last_starts_at: _timestamp_pb2.Timestamp
    participants: int
    watermark: int
    version: str
    def __init__(self, sport: _Optional[str] = ..., backend: _Optional[str] = ..., schema_version: _Optional[str] = ..., applied_events: _Optional[int] = ..., last_event_key: _Optional[str] = ..., last_starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participants: _Optional[int] = ..., watermark: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("family", "mode", "config", "trials", "promote")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_FIELD_NUMBER: _ClassVar[int]
    family: str
    mode: str
    config: str
    trials: int
    promote: bool
    def __init__(self, family: _Optional[str] = ..., mode: _Optional[str] = ..., config: _Optional[str] = ..., trials: _Optional[int] = ..., promote: _Optional[bool] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("trials_started", "trials_finished", "best_metric", "metric", "mlflow_run_id", "model_name", "registered_version")
    TRIALS_STARTED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    BEST_METRIC_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_VERSION_FIELD_NUMBER: _ClassVar[int]
    trials_started: int
    trials_finished: int
    best_metric: float
    metric: str
    mlflow_run_id: str
    model_name: str
    registered_version: int
    def __init__(self, trials_started: _Optional[int] = ..., trials_finished: _Optional[int] = ..., best_metric: _Optional[float] = ..., metric: _Optional[str] = ..., mlflow_run_id: _Optional[str] = ..., model_name: _Optional[str] = ..., registered_version: _Optional[int] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("job_id", "status", "purpose", "command", "message", "start_time", "end_time", "exit_code", "log_tail", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: str
    purpose: str
    command: str
    message: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    exit_code: int
    log_tail: str
    progress: TrainingProgress
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[str] = ..., purpose: _Optional[str] = ..., command: _Optional[str] = ..., message: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exit_code: _Optional[int] = ..., log_tail: _Optional[str] = ..., progress: _Optional[_Union[TrainingProgress, _Mapping]] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class StartTrainingResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ...) -> None: ...
