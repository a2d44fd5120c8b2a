"""The store: engines, migrations, and the one writer and reader of events.

:func:`write_batch` turns an :class:`~betting.batch.EventBatch` into rows idempotently (events
whose natural key already exists are skipped) inside the caller's transaction, so a rejected
import leaves nothing behind. :func:`load_batch` reads events back into the same form, which
:func:`betting.frames.selection_frame` flattens for features.
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
from sqlalchemy import Engine, case, create_engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from betting.batch import EventBatch
from betting.errors import ConfigError
from betting.schema import Base, Event, Market, OddsSnapshot, Result, Selection

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


def _lookup(session: Session, stmt: Any, column: Any, values: list[Any]) -> list[Any]:
    """Rows of ``stmt`` whose ``column`` is in ``values``, queried in chunks."""
    rows: list[Any] = []
    for start in range(0, len(values), _KEY_CHUNK):
        chunk = values[start : start + _KEY_CHUNK]
        rows.extend(session.execute(stmt.where(column.in_(chunk))).all())
    return [row[0] if len(row) == 1 else tuple(row) for row in rows]


def _insert(session: Session, model: type[Base], frame: pd.DataFrame) -> None:
    if len(frame):
        session.execute(insert(model.__table__), _records(frame))  # type: ignore[attr-defined]


def _write_new_events(session: Session, batch: EventBatch) -> WriteReport:
    """Insert rows table by table, reading generated ids back by natural key.

    Plain executemany inserts followed by keyed look-ups are much faster than RETURNING on
    both SQLite and PostgreSQL for batches of this shape.
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
    return WriteReport(
        events_added=len(keys), markets_added=len(markets), selections_added=len(selections),
        odds_added=len(odds), results_added=len(results),
    )  # fmt: skip


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

    Args:
        session: the transaction to write in; roll it back to undo everything.
        batch: validated here before anything is written.
        chunk_events: events written per round trip group (bounds memory on big batches).
        on_progress: called with the number of events handled after each chunk.
    """
    batch.validate()
    keys = batch.events["event_key"].tolist()
    existing = existing_event_keys(session, keys)
    new_keys = [k for k in keys if k not in existing]
    report = WriteReport(events_skipped=len(existing))
    if on_progress and existing:
        on_progress(len(existing))
    new = _subset(batch, new_keys) if existing else batch
    for start in range(0, len(new_keys), chunk_events):
        chunk_keys = new_keys[start : start + chunk_events]
        chunk = _subset(new, chunk_keys) if len(new_keys) > chunk_events else new
        report += _write_new_events(session, chunk)
        if on_progress:
            on_progress(len(chunk_keys))
    session.flush()
    logger.info(
        "wrote events", extra={"added": report.events_added, "skipped": report.events_skipped}
    )
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
) -> EventBatch:
    """Read the events matching the filters, with their markets, selections, odds and results."""
    conditions = []
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
    odds = _read(
        session,
        select(
            Event.key.label("event_key"), Market.key.label("market_key"),
            Selection.name.label("selection"), OddsSnapshot.bookmaker, OddsSnapshot.kind,
            OddsSnapshot.captured_at, OddsSnapshot.price,
        ).join(OddsSnapshot.__table__, OddsSnapshot.selection_id == Selection.id)
        .join(Selection.market).join(Market.event).where(*conditions),
    )  # fmt: skip
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
