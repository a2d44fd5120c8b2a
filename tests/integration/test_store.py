"""The schema and store on SQLite and PostgreSQL: migrations, idempotent writes, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.frames import selection_frame
from betting.schema import Base, Event, OddsSnapshot, Result
from betting.store import load_batch, store_stats, write_batch

KICKOFF = datetime(2024, 8, 17, 14, 0, tzinfo=UTC)


def two_matches(prefix: str = "t") -> EventBatch:
    """Two hand-made football matches: one settled 2-1, one not played yet."""
    events = pd.DataFrame(
        {
            "event_key": [f"{prefix}:1", f"{prefix}:2"],
            "source": "test",
            "sport": "football",
            "competition": "E0",
            "season": "2024-25",
            "starts_at": [KICKOFF, KICKOFF + timedelta(days=7)],
            "home": ["Arsenal", "Chelsea"],
            "away": ["Wolves", "Arsenal"],
            "home_score": [2, None],
            "away_score": [1, None],
        }
    )
    markets = pd.DataFrame(
        {"event_key": events["event_key"], "market_key": "1x2", "type": "1x2", "line": None}
    )
    rows = []
    for key, home, away in zip(events["event_key"], events["home"], events["away"], strict=True):
        for pos, (name, who) in enumerate((("home", home), ("draw", None), ("away", away))):
            rows.append((key, "1x2", name, pos, who, [0.5, 0.25, 0.25][pos]))
    selections = pd.DataFrame(
        rows,
        columns=["event_key", "market_key", "name", "position", "participant", "true_probability"],
    )
    odds = pd.DataFrame(
        [
            (s.event_key, "1x2", s.name, book, kind, KICKOFF - timedelta(hours=h), price)
            for s in selections.itertuples()
            for book, bump in (("pinnacle", 0.0), ("bet365", -0.05), ("market_max", 0.1))
            for kind, h, drift in (("open", 48, 0.1), ("close", 0, 0.0))
            for price in [round(0.97 / s.true_probability + bump + drift, 2)]
        ],
        columns=[
            "event_key",
            "market_key",
            "selection",
            "bookmaker",
            "kind",
            "captured_at",
            "price",
        ],
    )
    results = pd.DataFrame(
        {"event_key": [f"{prefix}:1"], "market_key": ["1x2"], "winner": ["home"]}
    )
    return EventBatch(events, markets, selections, odds, results)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"events", "markets", "selections", "results", "odds_snapshots", "backtest_runs",
            "backtest_bets", "equity_points", "predictions", "feedback"} <= tables  # fmt: skip


def test_write_batch_is_idempotent(session: Session) -> None:
    first = write_batch(session, two_matches())
    assert (first.events_added, first.markets_added, first.selections_added) == (2, 2, 6)
    assert first.odds_added == 2 * 3 * 3 * 2 and first.results_added == 1
    again = write_batch(session, two_matches())
    assert again.events_added == 0 and again.events_skipped == 2
    assert session.scalar(select(func.count()).select_from(OddsSnapshot)) == 36


def test_round_trip_through_load_batch_and_selection_frame(session: Session) -> None:
    write_batch(session, two_matches())
    batch = load_batch(session, sport="football")
    frame = selection_frame(batch)
    assert len(frame) == 6
    home = frame[(frame.event_key == "t:1") & (frame.selection == "home")].iloc[0]
    assert home.won == 1.0 and home.participant == "Arsenal"
    assert home.starts_at == pd.Timestamp(KICKOFF)
    assert home.close_ref == pytest.approx(1.94)  # pinnacle: 0.97 / 0.5
    assert home.close_mean == pytest.approx((1.94 + 1.89) / 2)  # market_max excluded
    assert home.close_best == pytest.approx(2.04) and home.close_n == 2
    draw = frame[(frame.event_key == "t:1") & (frame.selection == "draw")].iloc[0]
    assert draw.won == 0.0
    unplayed = frame[frame.event_key == "t:2"]
    assert unplayed.won.isna().all()
    assert load_batch(session, sport="racing").events.empty


def test_a_market_has_one_result(session: Session) -> None:
    write_batch(session, two_matches())
    result = session.scalars(select(Result)).one()
    again = {"market_id": result.market_id, "winning_selection_id": result.winning_selection_id}
    with pytest.raises(IntegrityError):
        session.execute(insert(Result), [again])


def test_bad_batches_are_refused_before_writing(session: Session) -> None:
    batch = two_matches()
    batch.odds.loc[0, "price"] = 1.0
    with pytest.raises(InvalidInput, match=r"above 1\.0"):
        write_batch(session, batch)
    batch = two_matches()
    batch.results.loc[0, "winner"] = "nobody"
    with pytest.raises(InvalidInput, match="nobody"):
        write_batch(session, batch)
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_timestamps_come_back_in_utc(session: Session) -> None:
    write_batch(session, two_matches())
    event = session.scalars(select(Event).where(Event.key == "t:1")).one()
    session.expire(event)
    assert event.starts_at == KICKOFF and event.starts_at.tzinfo is not None


def test_store_stats(session: Session) -> None:
    write_batch(session, two_matches())
    stats = store_stats(session)
    assert stats.tables["events"] == 2 and stats.tables["odds_snapshots"] == 36
    row = stats.events.iloc[0]
    assert (row.sport, row.competition, row.events, row.settled) == ("football", "E0", 2, 1)
