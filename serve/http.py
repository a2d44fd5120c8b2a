"""The HTTP face of the service: pydantic models that mirror the proto messages, field for field.

A request model is turned into its proto message (:func:`to_proto`) and goes through the same
:class:`~serve.service.PredictionService` as a gRPC call, so both transports check the same
rules and give the same answers; the proto answer comes back as JSON (:func:`from_proto`). Field
names are the proto's, enums are their proto names (``MARKET_TYPE_MATCH_ODDS``), timestamps are
RFC 3339 with a zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from serve.errors import BadRequest, FieldViolation, ModelUnavailable, ServeError

M = TypeVar("M", bound=Message)

MarketType = Literal[
    "MARKET_TYPE_WIN", "MARKET_TYPE_MATCH_ODDS", "MARKET_TYPE_MONEYLINE", "MARKET_TYPE_SPREAD",
    "MARKET_TYPE_TOTAL",
]  # fmt: skip
OddsKind = Literal["ODDS_KIND_OPEN", "ODDS_KIND_PRE_CLOSE", "ODDS_KIND_CLOSE"]
SignalTier = Literal["SIGNAL_TIER_A", "SIGNAL_TIER_B", "SIGNAL_TIER_C", "SIGNAL_TIER_D"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OddsQuote(_Strict):
    bookmaker: str
    kind: OddsKind
    price: float = Field(description="Decimal odds, finite and above 1.0.")
    captured_at: AwareDatetime | None = None


class Selection(_Strict):
    name: str
    participant: str = ""
    odds: list[OddsQuote]


class Market(_Strict):
    market_key: str
    type: MarketType
    line: float | None = None
    selections: list[Selection]


class Matchup(_Strict):
    home: str
    away: str


class Race(_Strict):
    runners: list[str]


class Event(_Strict):
    event_key: str = ""
    sport: str
    competition: str
    season: str = ""
    starts_at: AwareDatetime
    matchup: Matchup | None = None
    race: Race | None = None
    markets: list[Market]

    @model_validator(mode="after")
    def _one_kind_of_participants(self) -> Event:
        if self.matchup is not None and self.race is not None:
            raise ValueError("set one of matchup and race, not both")
        return self


class StakingOptions(_Strict):
    bankroll: float | None = None
    kelly_multiplier: float | None = None
    min_edge: float | None = None
    max_stake_fraction: float | None = None
    bookmakers: list[str] = Field(default_factory=list)
    include_agent_stake: bool = False


class PredictionRequest(_Strict):
    """GetPredictionRequest: a market of an event given in full (``raw_event``) or stored."""

    raw_event: Event | None = None
    event_key: str | None = None
    market_key: str = ""
    staking: StakingOptions | None = None
    model_name: str = ""
    model_alias: str = ""

    @model_validator(mode="after")
    def _one_event(self) -> PredictionRequest:
        if (self.raw_event is None) == (self.event_key is None):
            raise ValueError("set exactly one of raw_event and event_key")
        return self


class BatchPredictionRequest(_Strict):
    requests: list[PredictionRequest]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    feature_schema_version: str


class SelectionPrediction(BaseModel):
    selection: str
    probability: float
    fair_odds: float
    odds: float
    bookmaker: str
    expected_value: float
    kelly_fraction: float
    stake_fraction: float
    recommended_stake: float | None = None
    minimum_acceptable_odds: float
    tier: SignalTier
    is_bet: bool
    agent_stake_fraction: float | None = None
    agent_stake: float | None = None


class PredictionResponse(BaseModel):
    event_key: str
    market_key: str
    selections: list[SelectionPrediction]
    model: ModelInfo
    agent_model: ModelInfo | None = None
    predicted_at: datetime
    prediction_id: str = ""


class ItemFieldViolation(BaseModel):
    field: str
    description: str


class ItemError(BaseModel):
    code: int
    message: str
    field_violations: list[ItemFieldViolation] = Field(default_factory=list)


class BatchPredictionResult(BaseModel):
    prediction: PredictionResponse | None = None
    error: ItemError | None = None


class BatchPredictionResponse(BaseModel):
    results: list[BatchPredictionResult]


class ModelHealth(BaseModel):
    name: str
    alias: str
    version: str
    state: str
    loading_version: str
    message: str
    loaded_at: datetime | None = None


class HealthResponse(BaseModel):
    status: str
    models: list[ModelHealth]
    service_version: str
    feature_schema_version: str


def to_proto(model: BaseModel, message: M) -> M:
    """The proto message of a request model (unset optional fields stay unset)."""
    json_format.ParseDict(model.model_dump(mode="json", exclude_none=True), message)
    return message


def from_proto(message: Message) -> dict[str, Any]:
    """A proto answer as JSON, every field present, proto field names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def error_response(error: ServeError) -> JSONResponse:
    """The JSON answer of a refused request: the gRPC code's HTTP status and its details."""
    headers = {}
    if isinstance(error, ModelUnavailable):
        headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
    return JSONResponse(error.http_body(), status_code=error.http_status, headers=headers)


def _path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


async def validation_error(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's request validation errors as INVALID_ARGUMENT field violations (422)."""
    assert isinstance(error, RequestValidationError)
    violations = []
    for problem in error.errors():
        location = tuple(problem.get("loc", ()))
        if problem.get("type") == "json_invalid":  # the position in the text is no field
            location = ()
        elif location and location[0] == "body":
            location = location[1:]
        # A union member or validator name ("function-after[...]") is not a field: drop it.
        location = tuple(p for p in location if isinstance(p, int) or "[" not in str(p))
        violations.append(FieldViolation(_path(location), str(problem.get("msg", "invalid"))))
    if not violations:
        violations.append(FieldViolation("body", "the request body is not valid"))
    return error_response(BadRequest(violations))
