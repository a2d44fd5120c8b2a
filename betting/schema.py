"""The relational schema of betml's store (SQLAlchemy 2, typed ``Mapped`` models).

One abstraction covers races and matches: an :class:`Event` has :class:`Market` s, a market has
:class:`Selection` s and, once settled, one :class:`Result` naming its winning selection. Prices
are :class:`OddsSnapshot` rows, a time series keyed by selection, bookmaker, kind and capture time
(a TimescaleDB hypertable on PostgreSQL when the extension exists). Backtest exports of the Go
service, predictions served and feedback received live beside them.

All timestamps are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: Bumped with every Alembic revision that changes the tables below.
SCHEMA_REVISION = "0003"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
ID = BigInteger().with_variant(Integer(), "sqlite")


class MarketType(StrEnum):
    """Kinds of market; ``line`` qualifies spread and total markets."""

    WIN = "win"
    MATCH_ODDS = "1x2"
    MONEYLINE = "moneyline"
    SPREAD = "spread"
    TOTAL = "total"


class OddsKind(StrEnum):
    """When in a market's life an odds snapshot was taken."""

    OPEN = "open"
    PRE_CLOSE = "pre_close"
    CLOSE = "close"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Event(Base):
    """A race, match or game. ``key`` is the natural key that makes imports idempotent."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(40))
    sport: Mapped[str] = mapped_column(String(20))
    competition: Mapped[str] = mapped_column(String(60))
    season: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    home: Mapped[str | None] = mapped_column(String(120))
    away: Mapped[str | None] = mapped_column(String(120))
    home_score: Mapped[int | None] = mapped_column(Integer)
    away_score: Mapped[int | None] = mapped_column(Integer)

    markets: Mapped[list[Market]] = relationship(back_populates="event", cascade="all, delete")

    __table_args__ = (Index(None, "sport", "competition", "starts_at"),)


class Market(Base):
    """A market of an event: win, 1X2, moneyline, or spread/total with a line."""

    __tablename__ = "markets"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(20))
    line: Mapped[float | None] = mapped_column(Float)

    event: Mapped[Event] = relationship(back_populates="markets")
    selections: Mapped[list[Selection]] = relationship(
        back_populates="market", cascade="all, delete", order_by="Selection.position"
    )
    result: Mapped[Result | None] = relationship(cascade="all, delete")

    __table_args__ = (UniqueConstraint("event_id", "key"),)


class Selection(Base):
    """A runner or outcome of a market; ``position`` orders outcomes (home, draw, away)."""

    __tablename__ = "selections"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer)
    participant: Mapped[str | None] = mapped_column(String(120))
    true_probability: Mapped[float | None] = mapped_column(Float)

    market: Mapped[Market] = relationship(back_populates="selections")

    __table_args__ = (UniqueConstraint("market_id", "name"),)


class Result(Base):
    """The settlement of a market: exactly one winning selection."""

    __tablename__ = "results"

    market_id: Mapped[int] = mapped_column(
        ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    winning_selection_id: Mapped[int] = mapped_column(
        ForeignKey("selections.id", ondelete="CASCADE")
    )


class Settlement(Base):
    """The moment an event became settled: the log the online feature state follows.

    One row per event, written in the transaction that stores its result (a settled event
    imported, or a stored one settled later); ids grow with every settlement, so a reader knows
    what is new by the highest id it has seen (SQLite ``AUTOINCREMENT``: an id is never reused,
    even after the newest row's event is deleted).
    """

    __tablename__ = "settlements"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


class OddsSnapshot(Base):
    """One decimal price of one bookmaker for one selection at one moment."""

    __tablename__ = "odds_snapshots"

    selection_id: Mapped[int] = mapped_column(
        ForeignKey("selections.id", ondelete="CASCADE"), primary_key=True
    )
    bookmaker: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    price: Mapped[float] = mapped_column(Float)


class BacktestRun(Base):
    """One backtest exported by the Go service, unique by strategy, version and period."""

    __tablename__ = "backtest_runs"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    strategy_id: Mapped[str] = mapped_column(String(120))
    strategy_name: Mapped[str] = mapped_column(String(200))
    strategy_version: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    initial_capital: Mapped[float] = mapped_column(Float)
    final_capital: Mapped[float] = mapped_column(Float)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    risk_profile: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))

    bets: Mapped[list[BacktestBet]] = relationship(
        cascade="all, delete", order_by="BacktestBet.seq"
    )
    equity_curve: Mapped[list[EquityPoint]] = relationship(
        cascade="all, delete", order_by="EquityPoint.seq"
    )

    __table_args__ = (
        UniqueConstraint("strategy_id", "strategy_version", "period_start", "period_end"),
    )


class BacktestBet(Base):
    """One bet of a backtest's history."""

    __tablename__ = "backtest_bets"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_ref: Mapped[str] = mapped_column(String(200))
    market: Mapped[str] = mapped_column(String(40))
    selection: Mapped[str] = mapped_column(String(120))
    odds: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    expected_value: Mapped[float] = mapped_column(Float)
    stake: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(10))
    pnl: Mapped[float] = mapped_column(Float)


class EquityPoint(Base):
    """One point of a backtest's equity curve."""

    __tablename__ = "equity_points"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    equity: Mapped[float] = mapped_column(Float)


class Prediction(Base):
    """A probability served for one selection, kept for monitoring and retraining.

    The rows of one answered market share ``prediction_id``, the id returned to the caller
    (GetPredictionResponse.prediction_id); ``odds`` and ``bookmaker`` are the price the answer
    was judged at.
    """

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    request_id: Mapped[str | None] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(120))
    model_version: Mapped[str] = mapped_column(String(40))
    event_ref: Mapped[str] = mapped_column(String(200))
    market: Mapped[str] = mapped_column(String(40))
    selection: Mapped[str] = mapped_column(String(120))
    selection_id: Mapped[int | None] = mapped_column(
        ForeignKey("selections.id", ondelete="SET NULL")
    )
    probability: Mapped[float] = mapped_column(Float)
    odds: Mapped[float | None] = mapped_column(Float)
    bookmaker: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (Index(None, "model_name", "created_at"),)


class Feedback(Base):
    """An outcome reported back by a client: a settled bet, a prediction's result."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    source: Mapped[str] = mapped_column(String(60))
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL")
    )
    backtest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("backtest_runs.id", ondelete="CASCADE")
    )
    event_ref: Mapped[str | None] = mapped_column(String(200))
    selection: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(10))
    pnl: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
