"""The settlement log on SQLite and PostgreSQL: settled imports, fixtures settled by a later
import or by :func:`settle_event`, and the reads the online feature state follows it with."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, delete, func, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from betting.batch import EventBatch
from betting.errors import InvalidInput, NotFound
from betting.schema import Event, Result, Settlement
from betting.settlement import settle_event
from betting.simulate import simulate
from betting.store import (
    create_engine_for,
    latest_settlement,
    load_batch,
    migrate,
    session_scope,
    settled_since,
    write_batch,
)

FRAMES = ("events", "markets", "selections", "odds", "results")


def _subset(batch: EventBatch, keys: list[str]) -> EventBatch:
    return EventBatch(
        *(getattr(batch, n)[getattr(batch, n)["event_key"].isin(keys)] for n in FRAMES)
    )


def _fixtures(batch: EventBatch) -> EventBatch:
    """The same events before they were played: no scores, no results."""
    events = batch.events.assign(home_score=None, away_score=None)
    return EventBatch(events, batch.markets, batch.selections, batch.odds, batch.results.iloc[:0])


def _football(seed: int = 21) -> EventBatch:
    return simulate("football", 1, seed=seed, teams=4)


def _races(seed: int = 22, races: int = 5) -> EventBatch:
    return simulate("racing", 1, seed=seed, events_per_season=races)


def _logged(session: Session) -> list[str]:
    """Event keys of the settlement log, in id order."""
    return list(
        session.scalars(
            select(Event.key).join(Settlement, Settlement.event_id == Event.id)
            .order_by(Settlement.id)
        )
    )  # fmt: skip


def _ids(session: Session) -> list[int]:
    """Settlement ids in order (PostgreSQL sequences do not restart with each test)."""
    return list(session.scalars(select(Settlement.id).order_by(Settlement.id)))


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _in_order(batch: EventBatch, keys: list[str] | None = None) -> list[str]:
    events = batch.events if keys is None else batch.events[batch.events["event_key"].isin(keys)]
    return events.sort_values(["starts_at", "event_key"])["event_key"].tolist()


def _results(batch: EventBatch) -> pd.DataFrame:
    frame = batch.results[["event_key", "market_key", "winner"]].astype(str)
    return frame.sort_values(["event_key", "market_key"], ignore_index=True)


def _scores(batch: EventBatch) -> dict[str, tuple[int, int]]:
    return {
        e.event_key: (int(e.home_score), int(e.away_score))
        for e in batch.events.itertuples()
        if pd.notna(e.home_score)
    }


def test_settled_new_events_are_logged_in_start_order(session: Session) -> None:
    season, races = _football(), _races()
    keys = season.events["event_key"].tolist()
    played = keys[::2]
    mixed = EventBatch.concat(
        [_fixtures(_subset(season, keys[1::2])), _subset(season, played), races]
    )
    mixed.events = mixed.events.iloc[::-1]  # the log follows start times, not the frame's order
    report = write_batch(session, mixed)
    assert report.events_added == len(keys) + len(races.events) and report.events_settled == 0
    # Scored matches and races with a winner (no score) are settled; fixtures are not.
    settled = pd.concat([season.events[season.events["event_key"].isin(played)], races.events])
    assert _logged(session) == _in_order(EventBatch(events=settled))
    assert _count(session, Settlement) == len(settled)
    assert latest_settlement(session) == _ids(session)[-1]


def test_a_re_import_settles_the_stored_fixtures_once(session: Session) -> None:
    season = _football()
    keys = season.events["event_key"].tolist()
    done, coming = keys[:4], keys[4:]
    write_batch(
        session, EventBatch.concat([_subset(season, done), _fixtures(_subset(season, coming))])
    )
    assert _logged(session) == _in_order(season, done)
    before = latest_settlement(session)

    report = write_batch(session, season)
    assert (report.events_added, report.events_skipped, report.events_settled) == (
        0, len(done), len(coming),
    )  # fmt: skip
    assert _logged(session) == _in_order(season, done) + _in_order(season, coming)
    assert settled_since(session, before) == (_in_order(season, coming), _ids(session)[-1])
    stored = load_batch(session, sport="football")
    pd.testing.assert_frame_equal(_results(stored), _results(season))
    assert _scores(stored) == _scores(season)

    rows = _count(session, Result), latest_settlement(session)
    again = write_batch(session, season)  # a third import changes nothing
    assert (again.events_added, again.events_settled, again.events_skipped) == (0, 0, len(keys))
    assert (_count(session, Result), latest_settlement(session)) == rows


def test_a_stored_result_is_not_rewritten_by_an_import(session: Session) -> None:
    season = _football()
    write_batch(session, season)
    draws = season.results[season.results["market_key"] == "1x2"].assign(winner="draw")
    other = EventBatch(
        season.events.assign(home_score=9, away_score=9), season.markets, season.selections,
        season.odds, draws,
    )  # fmt: skip
    assert write_batch(session, other).events_settled == 0
    stored = load_batch(session)
    pd.testing.assert_frame_equal(_results(stored), _results(season))
    assert _scores(stored) == _scores(season)


@pytest.mark.parametrize("lacking", ["market", "selection"])
def test_a_result_the_stored_event_cannot_take_writes_nothing(
    session: Session, lacking: str
) -> None:
    season = _football()
    stored = _fixtures(season)
    if lacking == "market":
        stored.markets = stored.markets[stored.markets["market_key"] == "1x2"]
        stored.selections = stored.selections[stored.selections["market_key"] == "1x2"]
        stored.odds = stored.odds[stored.odds["market_key"] == "1x2"]
    else:
        stored.selections = stored.selections.assign(
            name=stored.selections["name"].replace({"over": "over 2.5", "under": "under 2.5"})
        )
        stored.odds = stored.odds[stored.odds["market_key"] == "1x2"]
    write_batch(session, stored)
    first = season.results[season.results["market_key"] == "total:2.5"].iloc[0]
    with pytest.raises(InvalidInput) as info, session.begin_nested():
        write_batch(session, season)
    message = str(info.value)
    assert first.event_key in message and "total:2.5" in message and first.winner in message
    assert (_count(session, Result), _count(session, Settlement)) == (0, 0)
    assert session.scalar(select(func.count()).where(Event.home_score.is_not(None))) == 0


def test_settle_event_by_score_gives_the_simulated_results(session: Session) -> None:
    season = _football(seed=23)
    write_batch(session, _fixtures(season))
    order = _in_order(season)
    scores = _scores(season)
    for key in order:
        report = settle_event(session, key, home_score=scores[key][0], away_score=scores[key][1])
        assert (report.event_key, report.sport, report.markets_settled) == (key, "football", 2)
        assert not report.already_settled
    assert _logged(session) == order
    stored = load_batch(session)
    pd.testing.assert_frame_equal(_results(stored), _results(season))
    assert _scores(stored) == scores
    assert write_batch(session, season).events_settled == 0  # the import agrees: nothing to do

    key = order[0]
    again = settle_event(session, key, home_score=scores[key][0], away_score=scores[key][1])
    assert again.already_settled and again.markets_settled == 0
    assert again.starts_at == season.events.set_index("event_key").loc[key, "starts_at"]
    with pytest.raises(InvalidInput, match="already settled"):
        settle_event(session, key, home_score=scores[key][0] + 1, away_score=scores[key][1])
    assert _count(session, Settlement) == len(order)


def test_settle_event_with_winners_for_races(session: Session) -> None:
    races = _races()
    write_batch(session, _fixtures(races))
    winner = races.results.set_index("event_key")["winner"]
    key, other = races.events["event_key"].iloc[:2]
    runners = races.selections[races.selections["event_key"] == key]["name"].tolist()
    loser = next(r for r in runners if r != winner[key])
    report = settle_event(session, key, winners={"win": winner[key]})
    assert (report.sport, report.markets_settled, report.already_settled) == ("racing", 1, False)
    assert settle_event(session, key, winners={"win": winner[key]}).already_settled
    with pytest.raises(InvalidInput, match="already settled"):
        settle_event(session, key, winners={"win": loser})
    with pytest.raises(InvalidInput, match="place"):
        settle_event(session, other, winners={"place": winner[other]})
    with pytest.raises(InvalidInput, match="Nobody Known"):
        settle_event(session, other, winners={"win": "Nobody Known"})
    with pytest.raises(InvalidInput, match="home and away"):
        settle_event(session, other, home_score=1, away_score=0)
    assert _logged(session) == [key]
    stored = load_batch(session, event_keys=[key, other])
    assert stored.results[["event_key", "winner"]].values.tolist() == [[key, winner[key]]]


def test_settle_event_refuses_bad_input_and_writes_nothing(session: Session) -> None:
    season = _football()
    write_batch(session, _fixtures(season))
    key = season.events["event_key"].iloc[0]
    home, away = _scores(season)[key]
    with pytest.raises(NotFound, match="no-such-event") as info:
        settle_event(session, "no-such-event", home_score=1, away_score=0)
    assert isinstance(info.value, LookupError)
    bad: list[tuple[dict[str, object], str]] = [
        ({"home_score": 1}, "away_score"),
        ({}, "winners"),
        ({"home_score": -1, "away_score": 0}, "home_score"),
        ({"home_score": 0, "away_score": 1000}, "away_score"),
        ({"winners": {"total:3.5": "over"}}, "total:3.5"),
        ({"winners": {"1x2": "Team 99"}}, "Team 99"),
        ({"home_score": 3, "away_score": 0, "winners": {"1x2": "away"}}, "contradicts"),
    ]
    for kwargs, named in bad:
        with pytest.raises(InvalidInput, match=named), session.begin_nested():
            settle_event(session, key, **kwargs)  # type: ignore[arg-type]
    assert (_count(session, Result), _count(session, Settlement)) == (0, 0)
    assert session.scalar(select(Event.home_score).where(Event.key == key)) is None

    winner = "home" if home > away else "draw" if home == away else "away"
    report = settle_event(session, key, home_score=home, away_score=away, winners={"1x2": winner})
    assert report.markets_settled == 2 and _logged(session) == [key]


def test_settled_since_reads_each_event_once_per_sport(session: Session) -> None:
    season, races = _football(), _races()
    write_batch(session, EventBatch.concat([_fixtures(season), races]))
    assert settled_since(session, 0, sport="football") == ([], 0)
    ids = _ids(session)
    top = latest_settlement(session)
    assert len(ids) == len(races.events) and top == ids[-1]
    assert settled_since(session, 0) == (_in_order(races), top)
    assert settled_since(session, ids[1], sport="racing") == (_in_order(races)[2:], top)
    assert settled_since(session, top) == ([], top)

    write_batch(session, season)
    keys, last = settled_since(session, top, sport="football")
    assert keys == _in_order(season) and last == latest_settlement(session)
    first = session.scalar(select(Event.id).where(Event.key == keys[0]))
    session.add(Settlement(event_id=first))  # logged twice: read once, at its highest id
    session.flush()
    newest = latest_settlement(session)
    assert newest > last
    assert settled_since(session, top, sport="football") == (keys, newest)
    assert settled_since(session, last, sport="football") == ([keys[0]], newest)
    assert settled_since(session, last, sport="racing") == ([], last)


def test_load_batch_by_event_keys(session: Session) -> None:
    races = _races(races=1200)  # more keys than one IN list holds
    write_batch(session, EventBatch.concat([races, _football()]))
    everything = load_batch(session, sport="racing")
    keys = races.events["event_key"].tolist()
    chosen = load_batch(session, event_keys=keys[::-1] + keys[:5])  # any order, repeats
    for name in FRAMES:
        a, b = getattr(everything, name), getattr(chosen, name)
        assert list(a.columns) == list(b.columns) and a.dtypes.equals(b.dtypes)
        columns = list(a.columns)
        pd.testing.assert_frame_equal(
            a.sort_values(columns, ignore_index=True), b.sort_values(columns, ignore_index=True)
        )
    assert chosen.events["event_key"].tolist() == _in_order(races)
    few = load_batch(session, event_keys=keys[3:1:-1], with_odds=False)
    assert few.events["event_key"].tolist() == keys[2:4] and few.odds.empty
    assert load_batch(session, sport="football", event_keys=keys[:3]).events.empty
    assert load_batch(session, event_keys=[]).events.empty


def test_migrating_a_revision_0002_store_adds_an_empty_log(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0002")
    assert "settlements" not in inspect(engine).get_table_names()
    migrate(engine)
    with session_scope(engine) as session:
        assert latest_settlement(session) == 0 and settled_since(session, 0) == ([], 0)
        write_batch(session, _races())
        assert latest_settlement(session) == 5
    engine.dispose()


def test_settlements_become_visible_in_id_order_on_postgresql(engine: Engine) -> None:
    """A second writer waits for the first to commit, so a reader never skips a smaller id."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with its database lock")
    races = _races(seed=24, races=2)
    first, second = races.events["event_key"].tolist()
    winner = races.results.set_index("event_key")["winner"]
    with session_scope(engine) as setup:
        write_batch(setup, _fixtures(races))
    try:
        with Session(engine) as a, Session(engine) as b, Session(engine) as reader:
            a.begin()
            settle_event(a, first, winners={"win": winner[first]})
            b.begin()
            b.execute(text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                settle_event(b, second, winners={"win": winner[second]})
            b.rollback()
            reader.execute(text("SET lock_timeout = '300ms'"))
            assert settled_since(reader, 0, sport="racing")[0] == []  # reads are not blocked
            reader.rollback()
            a.commit()
            with b.begin():
                settle_event(b, second, winners={"win": winner[second]})
            keys, _top = settled_since(reader, 0, sport="racing")
            assert keys == [first, second]
    finally:
        with session_scope(engine) as cleanup:
            cleanup.execute(delete(Event).where(Event.key.in_([first, second])))


def test_a_tied_moneyline_game_is_settled_by_its_score_alone(session: Session) -> None:
    games = simulate("moneyline", 1, seed=25, teams=4)
    write_batch(session, _fixtures(games))
    key = games.events["event_key"].iloc[0]
    report = settle_event(session, key, home_score=100, away_score=100)
    assert (report.markets_settled, report.already_settled) == (0, False)
    assert _logged(session) == [key] and _count(session, Result) == 0
    assert _scores(load_batch(session, event_keys=[key])) == {key: (100, 100)}
    assert settle_event(session, key, home_score=100, away_score=100).already_settled
