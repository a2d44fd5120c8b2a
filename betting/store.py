"""The store: engines, migrations, and the one writer and reader of events.

:func:`write_batch` turns an :class:`~betting.batch.EventBatch` into rows idempotently (events
whose natural key already exists are skipped) inside the caller's transaction, so a rejected
import leaves nothing behind; a stored fixture is settled when its result arrives.
:func:`load_batch` reads events back into the same form, which
:func:`betting.frames.selection_frame` flattens for features. Every settled event gets a row in
the settlement log, which :func:`latest_settlement` and :func:`settled_since` read so that the
online feature state learns cheaply what became settled since it last looked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Engine,
    case,
    create_engine,
    event,
    exists,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from betting.batch import EventBatch
from betting.errors import ConfigError, InvalidInput
from betting.schema import Base, Event, Market, OddsSnapshot, Result, Selection, Settlement

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_KEY_CHUNK = 500


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and foreign keys enforced."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1] if "///" in url else ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, **kwargs)
    except Exception as e:
        raise ConfigError(f"cannot create a database engine for {url!r}: {e}") from e


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (creates it on an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


@dataclass
class WriteReport:
    """What :func:`write_batch` added and skipped."""

    events_added: int = 0
    events_skipped: int = 0
    markets_added: int = 0
    selections_added: int = 0
    odds_added: int = 0
    results_added: int = 0
    events_settled: int = 0
    """Events stored unsettled before that this batch's results settled."""

    def __iadd__(self, other: WriteReport) -> WriteReport:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts: NaN/NaT become None, timestamps become ``datetime``."""
    columns: dict[str, list[Any]] = {}
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = [None if pd.isna(v) else v for v in series.dt.to_pydatetime()]
        else:
            values = series.astype(object).where(series.notna(), None).tolist()
        columns[col] = values
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def existing_event_keys(session: Session, keys: list[str]) -> set[str]:
    """The subset of ``keys`` already in the store."""
    return set(_lookup(session, select(Event.key), Event.key, keys))


@contextmanager
def _custom_plans(session: Session) -> Iterator[None]:
    """On PostgreSQL, plan each statement for its own values while the block runs.

    The chunked look-ups of a big write run one statement many times; once the driver prepares
    it, PostgreSQL may switch to a generic plan costed on the statistics of the table before the
    write, which scans every row for each key (40 times slower on 20,000 fresh events).
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = session.scalar(text("SELECT current_setting('plan_cache_mode')"))
    session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))
    yield
    session.execute(text("SELECT set_config('plan_cache_mode', :v, true)"), {"v": before})


def _lookup(session: Session, stmt: Any, column: Any, values: list[Any]) -> list[Any]:
    """Rows of ``stmt`` whose ``column`` is in ``values``, queried in chunks."""
    rows: list[Any] = []
    if not values:
        return rows
    with _custom_plans(session):
        for start in range(0, len(values), _KEY_CHUNK):
            chunk = values[start : start + _KEY_CHUNK]
            rows.extend(session.execute(stmt.where(column.in_(chunk))).all())
    return [row[0] if len(row) == 1 else tuple(row) for row in rows]


def _insert(session: Session, model: type[Base], frame: pd.DataFrame) -> None:
    if len(frame):
        session.execute(insert(model.__table__), _records(frame))  # type: ignore[arg-type]


def _write_new_events(session: Session, batch: EventBatch) -> tuple[WriteReport, dict[str, int]]:
    """Insert rows table by table, reading generated ids back by natural key.

    Plain executemany inserts followed by keyed look-ups are much faster than RETURNING on
    both SQLite and PostgreSQL for batches of this shape.

    Returns:
        What was added, and the ids of the settled events among them (by event key), whose
        settlement rows :func:`write_batch` writes once every chunk is in.
    """
    keys = batch.events["event_key"].tolist()
    _insert(session, Event, batch.events.rename(columns={"event_key": "key"}))
    event_ids = dict(_lookup(session, select(Event.key, Event.id), Event.key, keys))

    markets = batch.markets.assign(event_id=batch.markets["event_key"].map(event_ids))
    _insert(session, Market, markets[["event_id", "market_key", "type", "line"]].rename(
        columns={"market_key": "key"}))  # fmt: skip
    market_rows = _lookup(
        session, select(Market.event_id, Market.key, Market.id), Market.event_id,
        list(event_ids.values()),
    )  # fmt: skip
    market_id = pd.DataFrame(market_rows, columns=["event_id", "market_key", "market_id"])
    markets = markets.merge(market_id, on=["event_id", "market_key"])
    market_key = markets.set_index(["event_key", "market_key"])["market_id"]

    selections = batch.selections.join(market_key, on=["event_key", "market_key"])
    _insert(session, Selection, selections[
        ["market_id", "name", "position", "participant", "true_probability"]])  # fmt: skip
    selection_rows = _lookup(
        session, select(Selection.market_id, Selection.name, Selection.id), Selection.market_id,
        markets["market_id"].tolist(),
    )  # fmt: skip
    selection_id = pd.DataFrame(selection_rows, columns=["market_id", "name", "selection_id"])
    selections = selections.merge(selection_id, on=["market_id", "name"])
    selection_key = selections.set_index(["event_key", "market_key", "name"])["selection_id"]

    results = batch.results.join(market_key, on=["event_key", "market_key"]).join(
        selection_key, on=["event_key", "market_key", "winner"]
    )
    _insert(session, Result, results[["market_id", "selection_id"]].rename(
        columns={"selection_id": "winning_selection_id"}))  # fmt: skip
    odds = batch.odds.join(selection_key, on=["event_key", "market_key", "selection"])
    _insert(
        session, OddsSnapshot, odds[["selection_id", "bookmaker", "kind", "captured_at", "price"]]
    )
    report = WriteReport(
        events_added=len(keys), markets_added=len(markets), selections_added=len(selections),
        odds_added=len(odds), results_added=len(results),
    )  # fmt: skip
    return report, {k: event_ids[k] for k in settled_keys(batch)}


def settled_keys(batch: EventBatch) -> set[str]:
    """Keys of the batch's settled events: a result on any market, or both scores."""
    events = batch.events
    scored = events["home_score"].notna() & events["away_score"].notna()
    return set(events.loc[scored, "event_key"]) | set(batch.results["event_key"])


def log_settlements(session: Session, event_ids: list[int]) -> None:
    """Append one settlement row per event id, in the given order, to the log.

    On PostgreSQL the log is locked against other writers until the transaction ends, so
    settlement ids become visible in id order: a reader that saw id ``n`` never later finds a
    smaller id committed (SQLite writers are serialised by the database lock anyway). Call it
    last in a transaction, as :func:`write_batch` and
    :func:`betting.settlement.settle_event` do, to hold the lock briefly.
    """
    if not event_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE settlements IN EXCLUSIVE MODE"))
    rows = [{"event_id": int(i)} for i in event_ids]
    session.execute(insert(Settlement.__table__), rows)  # type: ignore[arg-type]


def _settle_stored(session: Session, batch: EventBatch, keys: list[str]) -> dict[str, int]:
    """Settle the stored events of ``keys`` that have no result yet with the batch's result.

    An event counts as unsettled when its stored copy has neither scores nor a result on any
    market; one the batch settles (scores and/or results) gets them.

    Returns:
        The ids of the events settled, by event key.

    Raises:
        InvalidInput: a result names a market or selection the stored event lacks.
    """
    candidates = sorted(set(keys) & settled_keys(batch))
    if not candidates:
        return {}
    has_result = exists().where(Result.market_id == Market.id, Market.event_id == Event.id)
    unsettled = (
        select(Event.key, Event.id)
        .where(Event.home_score.is_(None), Event.away_score.is_(None), ~has_result)
        .with_for_update(of=Event)  # PostgreSQL: a concurrent settlement of one event waits
    )
    event_ids: dict[str, int] = dict(_lookup(session, unsettled, Event.key, candidates))
    if not event_ids:
        return {}
    events = batch.events[batch.events["event_key"].isin(list(event_ids))]
    scored = events[events["home_score"].notna() & events["away_score"].notna()]
    if len(scored):
        session.execute(
            update(Event),
            [
                {"id": event_ids[k], "home_score": int(h), "away_score": int(a)}
                for k, h, a in zip(scored["event_key"], scored["home_score"],
                                   scored["away_score"], strict=True)
            ],
        )  # fmt: skip
    results = batch.results[batch.results["event_key"].isin(list(event_ids))]
    if len(results):
        rows = _stored_results(session, results, event_ids)
        session.execute(insert(Result.__table__), rows)  # type: ignore[arg-type]
    return event_ids


def _stored_results(
    session: Session, results: pd.DataFrame, event_ids: dict[str, int]
) -> list[dict[str, int]]:
    """Result rows of stored events: market by (event, market key), winner by name.

    Raises:
        InvalidInput: naming the event, market and selection the stored event lacks.
    """
    market_rows = _lookup(
        session, select(Market.event_id, Market.key, Market.id), Market.event_id,
        sorted(set(event_ids[k] for k in results["event_key"])),
    )  # fmt: skip
    market_id = {(e, k): m for e, k, m in market_rows}
    selection_rows = _lookup(
        session, select(Selection.market_id, Selection.name, Selection.id),
        Selection.market_id, list(market_id.values()),
    )  # fmt: skip
    selection_id = {(m, n): i for m, n, i in selection_rows}
    rows = []
    for key, market_key, winner in zip(
        results["event_key"], results["market_key"], results["winner"], strict=True
    ):
        market = market_id.get((event_ids[key], market_key))
        if market is None:
            raise InvalidInput(
                f"event {key!r}: the result of market {market_key!r} (winner {winner!r}) is for "
                "a market the stored event does not have"
            )
        selection = selection_id.get((market, winner))
        if selection is None:
            raise InvalidInput(
                f"event {key!r} market {market_key!r}: winner {winner!r} is not a selection "
                "of the stored market"
            )
        rows.append({"market_id": market, "winning_selection_id": selection})
    return rows


def _subset(batch: EventBatch, keys: pd.Index | list[str]) -> EventBatch:
    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["event_key"].isin(keys)]

    return EventBatch(*(pick(getattr(batch, n)) for n in EventBatch.__dataclass_fields__))


def write_batch(
    session: Session,
    batch: EventBatch,
    *,
    chunk_events: int = 2000,
    on_progress: Callable[[int], None] | None = None,
) -> WriteReport:
    """Write the events of ``batch`` that are not in the store yet; never commits.

    Events already stored are left as they are, except that one stored without a result (a
    fixture: no scores, no result on any market) is settled with the batch's scores and
    results (``events_settled``). Every event settled here, new or stored, gets one
    :class:`~betting.schema.Settlement` row, in (starts_at, event_key) order, written last.

    Args:
        session: the transaction to write in; roll it back to undo everything.
        batch: validated here before anything is written.
        chunk_events: events written per round trip group (bounds memory on big batches).
        on_progress: called with the number of events handled after each chunk.

    Raises:
        InvalidInput: a bad batch, or a result for a stored fixture naming a market or
            selection it lacks (the caller rolls back: nothing is kept).
    """
    batch.validate()
    report = _write(session, batch, chunk_events, on_progress)
    logger.info(
        "wrote events",
        extra={
            "added": report.events_added,
            "settled": report.events_settled,
            "skipped": report.events_skipped,
        },
    )
    return report


def _write(
    session: Session,
    batch: EventBatch,
    chunk_events: int,
    on_progress: Callable[[int], None] | None,
) -> WriteReport:
    """:func:`write_batch` after validation: settle stored fixtures, add new events, log."""
    keys = batch.events["event_key"].tolist()
    existing = existing_event_keys(session, keys)
    new_keys = [k for k in keys if k not in existing]
    report = WriteReport(events_skipped=len(existing))
    settled = _settle_stored(session, batch, sorted(existing)) if existing else {}
    report.events_settled = len(settled)
    report.events_skipped -= len(settled)
    if on_progress and existing:
        on_progress(len(existing))
    new = _subset(batch, new_keys) if existing else batch
    for start in range(0, len(new_keys), chunk_events):
        chunk_keys = new_keys[start : start + chunk_events]
        chunk = _subset(new, chunk_keys) if len(new_keys) > chunk_events else new
        written, ids = _write_new_events(session, chunk)
        report += written
        settled.update(ids)
        if on_progress:
            on_progress(len(chunk_keys))
    events = batch.events[batch.events["event_key"].isin(list(settled))]
    in_order = events.sort_values(["starts_at", "event_key"])["event_key"]
    log_settlements(session, [settled[k] for k in in_order])
    session.flush()
    return report


def _read(session: Session, stmt: Any) -> pd.DataFrame:
    return pd.read_sql(stmt, session.connection())


def load_batch(
    session: Session,
    *,
    sport: str | None = None,
    competition: str | list[str] | None = None,
    seasons: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    event_keys: list[str] | None = None,
    with_odds: bool = True,
) -> EventBatch:
    """Read the events matching the filters, with their markets, selections, odds and results.

    Args:
        session: the transaction to read in.
        sport, competition, seasons: filters (None: any).
        start, end: start times in ``[start, end)``.
        event_keys: only these events (read in chunks when there are many).
        with_odds: False leaves the odds out (an empty frame): what features of the past need.
    """
    if event_keys is not None:
        event_keys = list(dict.fromkeys(event_keys))
    if event_keys is not None and len(event_keys) > _KEY_CHUNK:
        chunks = [event_keys[i : i + _KEY_CHUNK] for i in range(0, len(event_keys), _KEY_CHUNK)]
        with _custom_plans(session):
            parts = [
                load_batch(session, sport=sport, competition=competition, seasons=seasons,
                           start=start, end=end, event_keys=chunk, with_odds=with_odds)
                for chunk in chunks
            ]  # fmt: skip
        merged = EventBatch.concat(parts)
        merged.events = merged.events.sort_values(["starts_at", "event_key"], ignore_index=True)
        return merged
    conditions: list[ColumnElement[bool]] = []
    if event_keys is not None:
        conditions.append(Event.key.in_(event_keys))
    if sport:
        conditions.append(Event.sport == sport)
    if competition:
        comps = [competition] if isinstance(competition, str) else competition
        conditions.append(Event.competition.in_(comps))
    if seasons:
        conditions.append(Event.season.in_(seasons))
    if start:
        conditions.append(Event.starts_at >= start)
    if end:
        conditions.append(Event.starts_at < end)

    events = _read(
        session,
        select(
            Event.key.label("event_key"), Event.source, Event.sport, Event.competition,
            Event.season, Event.starts_at, Event.home, Event.away, Event.home_score,
            Event.away_score,
        ).where(*conditions).order_by(Event.starts_at, Event.key),
    )  # fmt: skip
    markets = _read(
        session,
        select(
            Event.key.label("event_key"), Market.key.label("market_key"), Market.type, Market.line
        )
        .join(Market.event)
        .where(*conditions),
    )
    selections = _read(
        session,
        select(
            Event.key.label("event_key"), Market.key.label("market_key"), Selection.name,
            Selection.position, Selection.participant, Selection.true_probability,
        ).join(Selection.market).join(Market.event).where(*conditions),
    )  # fmt: skip
    odds_query = select(
        Event.key.label("event_key"), Market.key.label("market_key"),
        Selection.name.label("selection"), OddsSnapshot.bookmaker, OddsSnapshot.kind,
        OddsSnapshot.captured_at, OddsSnapshot.price,
    ).join(OddsSnapshot.__table__, OddsSnapshot.selection_id == Selection.id).join(
        Selection.market).join(Market.event).where(*conditions)  # fmt: skip
    odds = _read(session, odds_query if with_odds else odds_query.where(false()))
    results = _read(
        session,
        select(
            Event.key.label("event_key"), Market.key.label("market_key"),
            Selection.name.label("winner"),
        ).select_from(Result)
        .join(Selection, Selection.id == Result.winning_selection_id)
        .join(Market, Market.id == Result.market_id).join(Market.event).where(*conditions),
    )  # fmt: skip
    for frame, col in ((events, "starts_at"), (odds, "captured_at")):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return EventBatch(events, markets, selections, odds, results)


def latest_settlement(session: Session) -> int:
    """The highest settlement id (0 when nothing was settled since the log began)."""
    return int(session.scalar(select(func.max(Settlement.id))) or 0)


def settled_since(
    session: Session, after_id: int, *, sport: str | None = None
) -> tuple[list[str], int]:
    """Events settled after settlement ``after_id`` (of ``sport`` when given).

    Returns:
        Their keys, once each, in (starts_at, key) order, and the highest settlement id seen
        (``after_id`` when there is none).
    """
    query = (
        select(Event.key, Event.starts_at, func.max(Settlement.id))
        .join(Settlement, Settlement.event_id == Event.id)
        .where(Settlement.id > after_id)
        .group_by(Event.key, Event.starts_at)
        .order_by(Event.starts_at, Event.key)
    )
    if sport:
        query = query.where(Event.sport == sport)
    rows = session.execute(query).all()
    top = max((int(r[2]) for r in rows), default=after_id)
    return [r[0] for r in rows], top


@dataclass
class StoreStats:
    """What is in the store, for ``betml data stats``."""

    tables: dict[str, int] = field(default_factory=dict)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)


def store_stats(session: Session) -> StoreStats:
    """Row counts per table and events per sport, competition and season."""
    tables = {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }
    settled = select(Market.event_id).join(Result, Result.market_id == Market.id)
    events = _read(
        session,
        select(
            Event.sport, Event.competition, Event.season,
            func.count().label("events"),
            func.sum(case((Event.id.in_(settled), 1), else_=0)).label("settled"),
            func.min(Event.starts_at).label("first"), func.max(Event.starts_at).label("last"),
        ).group_by(Event.sport, Event.competition, Event.season)
        .order_by(Event.sport, Event.competition, Event.season),
    )  # fmt: skip
    return StoreStats(tables=tables, events=events)
