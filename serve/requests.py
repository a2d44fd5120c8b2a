"""Checking requests of ``betml.v1.MLService`` and turning them into betml's own forms.

Every rule the proto documents for a request field is checked here, and every broken rule is
reported at once as a :class:`~serve.errors.FieldViolation` with the field's path in the request
(``raw_event.markets[0].selections[2].odds[0].price``). A raw event becomes an
:class:`~betting.batch.EventBatch` of one unsettled event, the form training reads from the
store, so online features go through the same code as offline ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp

from betting.batch import (
    EVENT_COLUMNS,
    MARKET_COLUMNS,
    ODDS_COLUMNS,
    RESULT_COLUMNS,
    SELECTION_COLUMNS,
    EventBatch,
)
from betting.ingest.football_data import season_of
from betting.schema import MarketType, OddsKind
from serve.errors import BadRequest, FieldViolation, ResourceNotFound
from serve.proto.betml.v1 import ml_service_pb2 as pb

#: Source recorded for events that arrive in requests.
REQUEST_SOURCE = "request"
DEFAULT_KELLY_MULTIPLIER = 0.25
DEFAULT_MIN_EDGE = 0.02

MARKET_TYPES: dict[int, str] = {
    pb.MARKET_TYPE_WIN: MarketType.WIN.value,
    pb.MARKET_TYPE_MATCH_ODDS: MarketType.MATCH_ODDS.value,
    pb.MARKET_TYPE_MONEYLINE: MarketType.MONEYLINE.value,
    pb.MARKET_TYPE_SPREAD: MarketType.SPREAD.value,
    pb.MARKET_TYPE_TOTAL: MarketType.TOTAL.value,
}
ODDS_KINDS: dict[int, str] = {
    pb.ODDS_KIND_OPEN: OddsKind.OPEN.value,
    pb.ODDS_KIND_PRE_CLOSE: OddsKind.PRE_CLOSE.value,
    pb.ODDS_KIND_CLOSE: OddsKind.CLOSE.value,
}
_LINED = {pb.MARKET_TYPE_SPREAD, pb.MARKET_TYPE_TOTAL}
_MODEL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class Staking:
    """StakingOptions with the documented defaults filled in."""

    bankroll: float | None = None
    kelly_multiplier: float = DEFAULT_KELLY_MULTIPLIER
    min_edge: float = DEFAULT_MIN_EDGE
    max_stake_fraction: float | None = None
    bookmakers: tuple[str, ...] = ()
    include_agent_stake: bool = False


@dataclass(frozen=True)
class RawEvent:
    """An event given in full: its key (given or derived), sport and batch of one event."""

    event_key: str
    sport: str
    starts_at: datetime
    batch: EventBatch
    markets: tuple[str, ...]


@dataclass(frozen=True)
class MarketRequest:
    """One market to predict (a GetPredictionRequest), checked."""

    event_key: str
    market_key: str
    staking: Staking
    raw: RawEvent | None = None
    model_name: str | None = None
    model_alias: str | None = None


@dataclass(frozen=True)
class FeaturesRequest:
    """A GetFeaturesRequest, checked."""

    event_key: str
    market_keys: tuple[str, ...]
    raw: RawEvent | None = None


@dataclass
class _Problems:
    found: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.found.append(FieldViolation(path, description))

    def raise_any(self) -> None:
        if self.found:
            raise BadRequest(self.found)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _time(ts: Timestamp, path: str, problems: _Problems) -> datetime | None:
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as e:
        problems.add(path, f"is not a valid timestamp ({ts.seconds}s, {ts.nanos}ns): {e}")
        return None


def _required_text(value: str, path: str, problems: _Problems, *, limit: int = 200) -> str:
    text = value.strip()
    if not text:
        problems.add(path, "is required")
    elif len(text) > limit:
        problems.add(path, f"must be at most {limit} characters, got {len(text)}")
    return text


def _participants(
    event: pb.Event, path: str, problems: _Problems
) -> tuple[str | None, str | None, set[str]]:
    which = event.WhichOneof("participants")
    if which == "matchup":
        home = _required_text(event.matchup.home, _join(path, "matchup.home"), problems)
        away = _required_text(event.matchup.away, _join(path, "matchup.away"), problems)
        if home and home == away:
            problems.add(_join(path, "matchup.away"), f"{away!r} cannot also be the home side")
        return home or None, away or None, {home, away} - {""}
    if which == "race":
        runners = [r.strip() for r in event.race.runners]
        for i, runner in enumerate(runners):
            if not runner:
                problems.add(_join(path, f"race.runners[{i}]"), "is required")
        if len(runners) < 2:
            problems.add(_join(path, "race.runners"), f"needs at least 2, got {len(runners)}")
        duplicates = sorted({r for r in runners if r and runners.count(r) > 1})
        if duplicates:
            problems.add(_join(path, "race.runners"), f"must be unique: {duplicates} repeat")
        return None, None, set(runners) - {""}
    problems.add(_join(path, "participants"), "is required: set matchup or race")
    return None, None, set()


def _quotes(
    selection: pb.Selection, path: str, names: tuple[str, str, str], now: datetime,
    problems: _Problems,
) -> list[dict[str, object]]:  # fmt: skip
    if not selection.odds:
        problems.add(_join(path, "odds"), "needs at least one price")
    rows = []
    for k, quote in enumerate(selection.odds):
        at = f"{path}.odds[{k}]"
        bookmaker = _required_text(quote.bookmaker, f"{at}.bookmaker", problems, limit=80)
        if bookmaker and bookmaker != bookmaker.lower():
            problems.add(f"{at}.bookmaker", f"{bookmaker!r} must be lower case")
        kind = ODDS_KINDS.get(quote.kind)
        if kind is None:
            problems.add(f"{at}.kind", f"must be OPEN, PRE_CLOSE or CLOSE, got {quote.kind}")
        if not (math.isfinite(quote.price) and quote.price > 1.0):
            problems.add(f"{at}.price", f"must be finite odds above 1.0, got {quote.price!r}")
        captured = _time(quote.captured_at, f"{at}.captured_at", problems) if quote.HasField(
            "captured_at") else now  # fmt: skip
        rows.append({
            "event_key": names[0], "market_key": names[1], "selection": names[2],
            "bookmaker": bookmaker, "kind": kind, "captured_at": captured, "price": quote.price,
        })  # fmt: skip
    return rows


def _market(
    market: pb.Market, path: str, event_key: str, participants: set[str], now: datetime,
    problems: _Problems,
) -> tuple[dict[str, object], list[dict[str, object]], list[dict[str, object]]]:  # fmt: skip
    key = _required_text(market.market_key, f"{path}.market_key", problems, limit=40)
    kind = MARKET_TYPES.get(market.type)
    if kind is None:
        problems.add(f"{path}.type", f"is required (WIN, MATCH_ODDS, ...), got {market.type}")
    line = market.line if market.HasField("line") else None
    if market.type in _LINED and line is None:
        problems.add(f"{path}.line", f"is required for a {kind} market")
    if market.type not in _LINED and line is not None and kind is not None:
        problems.add(f"{path}.line", f"must be unset for a {kind} market, got {line!r}")
    if line is not None and not math.isfinite(line):
        problems.add(f"{path}.line", f"must be finite, got {line!r}")
    if len(market.selections) < 2:
        problems.add(f"{path}.selections", f"needs at least 2, got {len(market.selections)}")
    selections: list[dict[str, object]] = []
    odds: list[dict[str, object]] = []
    seen: set[str] = set()
    for j, selection in enumerate(market.selections):
        at = f"{path}.selections[{j}]"
        name = _required_text(selection.name, f"{at}.name", problems, limit=120)
        if name in seen:
            problems.add(f"{at}.name", f"{name!r} appears twice in market {key!r}")
        seen.add(name)
        participant = selection.participant.strip() or None
        if participant is not None and participant not in participants:
            problems.add(f"{at}.participant", f"{participant!r} does not take part in the event")
        selections.append({
            "event_key": event_key, "market_key": key, "name": name, "position": j,
            "participant": participant, "true_probability": None,
        })  # fmt: skip
        odds.extend(_quotes(selection, at, (event_key, key, name), now, problems))
    row: dict[str, object] = {"event_key": event_key, "market_key": key, "type": kind,
                              "line": line}  # fmt: skip
    return row, selections, odds


def derived_event_key(sport: str, competition: str, starts_at: datetime, sides: list[str]) -> str:
    """The key of a raw event sent without one: ``raw:<sport>:<competition>:<start>:<sides>``."""
    return f"raw:{sport}:{competition}:{starts_at:%Y-%m-%dT%H:%MZ}:{':'.join(sides)}"


def raw_event(event: pb.Event, path: str, now: datetime, problems: _Problems) -> RawEvent | None:
    """The checked batch of one raw event; problems are added to ``problems``."""
    before = len(problems.found)
    sport = _required_text(event.sport, _join(path, "sport"), problems, limit=20)
    if sport and sport != sport.lower():
        problems.add(_join(path, "sport"), f"{sport!r} must be lower case")
    competition = _required_text(event.competition, _join(path, "competition"), problems, limit=40)
    starts_at = None
    if not event.HasField("starts_at"):
        problems.add(_join(path, "starts_at"), "is required")
    else:
        starts_at = _time(event.starts_at, _join(path, "starts_at"), problems)
    home, away, participants = _participants(event, path, problems)
    if not event.markets:
        problems.add(_join(path, "markets"), "needs at least one market")
    sides = [home, away] if home and away else list(event.race.runners)
    key = event.event_key.strip() or derived_event_key(
        sport, competition, starts_at or now, [s for s in sides if s]
    )
    markets: list[dict[str, object]] = []
    selections: list[dict[str, object]] = []
    odds: list[dict[str, object]] = []
    for i, market in enumerate(event.markets):
        row, rows, quotes = _market(
            market, _join(path, f"markets[{i}]"), key, participants, now, problems
        )
        if row["market_key"] and row["market_key"] in {m["market_key"] for m in markets}:
            problems.add(_join(path, f"markets[{i}].market_key"),
                         f"{row['market_key']!r} appears twice in the event")  # fmt: skip
        markets.append(row)
        selections.extend(rows)
        odds.extend(quotes)
    if len(problems.found) > before or starts_at is None:
        return None
    season = event.season.strip() or season_of(pd.Timestamp(starts_at))
    events = [{
        "event_key": key, "source": REQUEST_SOURCE, "sport": sport, "competition": competition,
        "season": season, "starts_at": pd.Timestamp(starts_at), "home": home, "away": away,
        "home_score": None, "away_score": None,
    }]  # fmt: skip
    odds_frame = pd.DataFrame(odds, columns=ODDS_COLUMNS)
    odds_frame["captured_at"] = pd.to_datetime(odds_frame["captured_at"], utc=True)
    batch = EventBatch(
        pd.DataFrame(events, columns=EVENT_COLUMNS),
        pd.DataFrame(markets, columns=MARKET_COLUMNS),
        pd.DataFrame(selections, columns=SELECTION_COLUMNS),
        odds_frame,
        pd.DataFrame(columns=RESULT_COLUMNS),
    )
    keys = tuple(str(m["market_key"]) for m in markets)
    return RawEvent(key, sport, starts_at, batch, keys)


def _staking(options: pb.StakingOptions, problems: _Problems) -> Staking:
    bankroll = options.bankroll if options.HasField("bankroll") else None
    if bankroll is not None and not (math.isfinite(bankroll) and bankroll >= 0.0):
        problems.add("staking.bankroll", f"must be finite and >= 0, got {bankroll!r}")
    multiplier = (
        options.kelly_multiplier
        if options.HasField("kelly_multiplier")
        else DEFAULT_KELLY_MULTIPLIER
    )
    if not 0.0 <= multiplier <= 1.0:
        problems.add("staking.kelly_multiplier", f"must be in [0, 1], got {multiplier!r}")
    min_edge = options.min_edge if options.HasField("min_edge") else DEFAULT_MIN_EDGE
    if not (math.isfinite(min_edge) and min_edge > -1.0):
        problems.add("staking.min_edge", f"must be finite and above -1, got {min_edge!r}")
    cap = options.max_stake_fraction if options.HasField("max_stake_fraction") else None
    if cap is not None and not 0.0 < cap <= 1.0:
        problems.add("staking.max_stake_fraction", f"must be in (0, 1], got {cap!r}")
    bookmakers = tuple(b.strip().lower() for b in options.bookmakers)
    for i, name in enumerate(bookmakers):
        if not name:
            problems.add(f"staking.bookmakers[{i}]", "must not be empty")
    return Staking(bankroll, multiplier, min_edge, cap, bookmakers, options.include_agent_stake)


def _model(name: str, alias: str, problems: _Problems) -> tuple[str | None, str | None]:
    name, alias = name.strip(), alias.strip()
    if name and not _MODEL_NAME.fullmatch(name):
        problems.add("model_name", f"{name!r} must be a name like betml-lightgbm-football-1x2")
    if alias and not _ALIAS.fullmatch(alias):
        problems.add("model_alias", f"{alias!r} must be lowercase letters, digits, '-' or '_'")
    if alias and not name:
        problems.add("model_alias", f"{alias!r} needs model_name as well")
    return name or None, alias or None


def prediction_request(request: pb.GetPredictionRequest, now: datetime) -> MarketRequest:
    """Check a GetPredictionRequest.

    Raises:
        BadRequest: every broken rule, each with its field path.
        ResourceNotFound: the raw event has no market ``market_key``.
    """
    problems = _Problems()
    staking = _staking(request.staking, problems)
    model_name, model_alias = _model(request.model_name, request.model_alias, problems)
    market_key = request.market_key.strip()
    which = request.WhichOneof("event")
    raw = None
    if which is None:
        problems.add("event", "is required: set raw_event or event_key")
    elif which == "event_key":
        event_key = _required_text(request.event_key, "event_key", problems)
        if not market_key:
            problems.add("market_key", "is required with event_key")
    else:
        raw = raw_event(request.raw_event, "raw_event", now, problems)
    problems.raise_any()
    if raw is not None:
        event_key = raw.event_key
        if not market_key:
            if len(raw.markets) != 1:
                raise BadRequest.of(
                    "market_key", f"is required: the raw event has {len(raw.markets)} markets"
                )
            market_key = raw.markets[0]
        elif market_key not in raw.markets:
            raise ResourceNotFound(
                "market", f"{event_key}/{market_key}",
                f"event {event_key!r} has no market {market_key!r} (it has {list(raw.markets)})",
            )  # fmt: skip
    return MarketRequest(event_key, market_key, staking, raw, model_name, model_alias)


def features_request(request: pb.GetFeaturesRequest, now: datetime) -> FeaturesRequest:
    """Check a GetFeaturesRequest (raises like :func:`prediction_request`)."""
    problems = _Problems()
    which = request.WhichOneof("event")
    raw, event_key = None, ""
    if which is None:
        problems.add("event", "is required: set raw_event or event_key")
    elif which == "event_key":
        event_key = _required_text(request.event_key, "event_key", problems)
    else:
        raw = raw_event(request.raw_event, "raw_event", now, problems)
    keys = tuple(k.strip() for k in request.market_keys)
    for i, key in enumerate(keys):
        if not key:
            problems.add(f"market_keys[{i}]", "must not be empty")
    problems.raise_any()
    if raw is not None:
        event_key = raw.event_key
        missing = [k for k in keys if k not in raw.markets]
        if missing:
            raise ResourceNotFound(
                "market", f"{event_key}/{missing[0]}",
                f"event {event_key!r} has no market {missing[0]!r} (it has {list(raw.markets)})",
            )  # fmt: skip
    return FeaturesRequest(event_key, keys, raw)
