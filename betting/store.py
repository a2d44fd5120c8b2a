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
    except Exception as e:  # noqa: BLE001 - a bad URL is a configuration error
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
    """Rows as dicts with NaN/NaT turned into None and timestamps into datetimes."""
    out = frame.astype(object).where(frame.notna(), None)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            out[col] = [None if v is None else v.to_pydatetime() for v in out[col]]
    return out.to_dict("records")


def existing_event_keys(session: Session, keys: list[str]) -> set[str]:
    """The subset of ``keys`` already in the store."""
    found: set[str] = set()
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        found.update(session.scalars(select(Event.key).where(Event.key.in_(chunk))))
    return found


def _insert_returning_ids(session: Session, model: type[Base], rows: list[dict]) -> list[int]:
    if not rows:
        return []
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]
    return list(session.scalars(stmt, rows))


def _write_new_events(session: Session, batch: EventBatch) -> WriteReport:
    report = WriteReport(events_added=len(batch.events))
    events = batch.events.rename(columns={"event_key": "key"})
    event_ids = _insert_returning_ids(session, Event, _records(events))
    event_id = pd.Series(event_ids, index=batch.events["event_key"].to_numpy(), name="event_id")

    markets = batch.markets.join(event_id, on="event_key")
    market_rows = _records(
        markets.rename(columns={"market_key": "key"})[["event_id", "key", "type", "line"]]
    )
    markets["market_id"] = _insert_returning_ids(session, Market, market_rows)
    report.markets_added = len(markets)
    market_id = markets.set_index(["event_key", "market_key"])["market_id"]

    selections = batch.selections.join(market_id, on=["event_key", "market_key"])
    sel_cols = ["market_id", "name", "position", "participant", "true_probability"]
    selections["selection_id"] = _insert_returning_ids(
        session, Selection, _records(selections[sel_cols])
    )
    report.selections_added = len(selections)
    selection_id = selections.set_index(["event_key", "market_key", "name"])["selection_id"]

    results = batch.results.join(market_id, on=["event_key", "market_key"]).join(
        selection_id, on=["event_key", "market_key", "winner"]
    )
    result_rows = _records(
        results.rename(columns={"selection_id": "winning_selection_id"})[
            ["market_id", "winning_selection_id"]
        ]
    )
    if result_rows:
        session.execute(insert(Result), result_rows)
    report.results_added = len(result_rows)

    odds = batch.odds.join(selection_id, on=["event_key", "market_key", "selection"])
    odds_cols = ["selection_id", "bookmaker", "kind", "captured_at", "price"]
    odds_rows = _records(odds[odds_cols])
    if odds_rows:
        session.execute(insert(OddsSnapshot), odds_rows)
    report.odds_added = len(odds_rows)
    return report


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
        ).join(Market.event).where(*conditions),
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
