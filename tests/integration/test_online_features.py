"""Online features are the offline features: the same event, stored or sent raw, gets the rows
``build_features`` gives it over the whole store (no Ray needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from betting.batch import EventBatch
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from betting.store import create_engine_for, load_batch, migrate, session_scope, write_batch
from serve.errors import ResourceNotFound
from serve.online import OnlineFeatures
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import prediction_request
from tests.serving import as_raw_event

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, EventBatch]:
    engine = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('online') / 'betml.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, simulate("football", 2, seed=21, teams=8))
        write_batch(session, simulate("moneyline", 1, seed=21, teams=6))  # another sport
    with session_scope(engine) as session:
        return engine, load_batch(session)


def _offline(batch: EventBatch) -> pd.DataFrame:
    return build_features(selection_frame(batch))


def _raw(event: pb.Event) -> object:
    return prediction_request(pb.GetPredictionRequest(raw_event=event, market_key="1x2"), NOW).raw


def test_a_stored_event_gets_its_offline_features(store: tuple[Engine, EventBatch]) -> None:
    engine, batch = store
    online = OnlineFeatures(lambda: engine)
    offline = _offline(batch)  # the whole store, every sport
    for key in batch.events["event_key"].iloc[[5, 100, -1]]:
        rows = online.stored_event(key).rows
        expected = offline[offline["event_key"] == key]
        pd.testing.assert_frame_equal(
            rows[FEATURE_COLUMNS].reset_index(drop=True),
            expected[FEATURE_COLUMNS].reset_index(drop=True),
        )
    with pytest.raises(ResourceNotFound):
        online.stored_event("no-such-event")


def test_a_raw_event_gets_the_features_training_would_compute(
    store: tuple[Engine, EventBatch],
) -> None:
    engine, batch = store
    online = OnlineFeatures(lambda: engine)
    offline = _offline(batch)
    football = batch.events[batch.events["sport"] == "football"]["event_key"]
    keys = football.iloc[[40, 90, -1]].tolist()
    # Sent together (BatchPredict builds one sport's raw events in one call) and twice over.
    raws = [_raw(as_raw_event(batch, key)) for key in [*keys, keys[0]]]
    answers = online.raw_events(raws)  # type: ignore[arg-type]
    for key, answer in zip([*keys, keys[0]], answers, strict=True):
        expected = offline[offline["event_key"] == key].sort_values(["market_key", "position"])
        assert answer.event_key == key
        assert answer.rows["selection"].tolist() == expected["selection"].tolist()
        # Equal but for the order in which bookmakers' prices are summed (a few ulps).
        np.testing.assert_allclose(
            answer.rows[FEATURE_COLUMNS].to_numpy(float),
            expected[FEATURE_COLUMNS].to_numpy(float),
            rtol=1e-12, atol=1e-15,
        )  # fmt: skip


def test_a_future_event_sees_the_whole_history(
    store: tuple[Engine, EventBatch], tmp_path: Path
) -> None:
    engine, batch = store
    online = OnlineFeatures(lambda: engine)
    last = batch.events[batch.events["sport"] == "football"].iloc[-1]
    event = as_raw_event(batch, last["event_key"])
    event.event_key = "next-match"
    event.starts_at.FromDatetime(datetime(2030, 1, 1, tzinfo=UTC))
    [answer] = online.raw_events([_raw(event)])  # type: ignore[list-item]
    raw_batch = _raw(event).batch  # type: ignore[attr-defined]
    expected = _offline(EventBatch.concat([batch, raw_batch]))
    expected = expected[expected["event_key"] == "next-match"]
    np.testing.assert_allclose(
        answer.rows[FEATURE_COLUMNS].to_numpy(float),
        expected[FEATURE_COLUMNS].to_numpy(float),
        rtol=1e-12, atol=1e-15,
    )  # fmt: skip
    assert (answer.rows["experience"] > 0).all()  # the teams' history was found


def _fixtures(batch: EventBatch) -> EventBatch:
    """The same events before they were played: no scores, no results."""
    events = batch.events.assign(home_score=None, away_score=None)
    return EventBatch(events, batch.markets, batch.selections, batch.odds, batch.results.iloc[:0])


def _store(tmp_path: Path, name: str = "betml.db") -> Engine:
    engine = create_engine_for(f"sqlite:///{tmp_path / name}")
    migrate(engine)
    return engine


def _close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        a[FEATURE_COLUMNS].to_numpy(float), b[FEATURE_COLUMNS].to_numpy(float),
        rtol=1e-12, atol=1e-15,
    )  # fmt: skip


def test_results_stored_later_are_seen_by_the_next_prediction(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    season = simulate("football", 1, seed=3, teams=6)
    keys = season.events["event_key"].tolist()
    played, coming = keys[: len(keys) // 2], keys[len(keys) // 2 :]
    with session_scope(engine) as session:
        write_batch(session, _subset(season, played))
        write_batch(session, _fixtures(_subset(season, coming)))
    online = OnlineFeatures(lambda: engine)
    stored_then = EventBatch.concat([_subset(season, played), _fixtures(_subset(season, coming))])
    target = coming[-1]
    _close(online.stored_event(target).rows, _offline(stored_then).query("event_key == @target"))
    applied = online.states.current("football").kept.state.applied
    assert applied == len(played)

    with session_scope(engine) as session:  # the results come in: the fixtures are settled
        report = write_batch(session, season)
    assert (report.events_added, report.events_settled) == (0, len(coming))
    state = online.states.current("football").kept.state  # no TTL: the next read applies them
    assert state.applied == len(keys) and online.states.rebuilds == 1
    _close(online.stored_event(target).rows, _offline(season).query("event_key == @target"))
    event = as_raw_event(season, keys[-1])
    event.event_key = "next-match"
    event.starts_at.FromDatetime(datetime(2030, 1, 1, tzinfo=UTC))
    [answer] = online.raw_events([_raw(event)])  # type: ignore[list-item]
    raw_batch = _raw(event).batch  # type: ignore[attr-defined]
    expected = _offline(EventBatch.concat([season, raw_batch])).query("event_key == 'next-match'")
    _close(answer.rows, expected)
    with session_scope(engine) as session:
        assert write_batch(session, season).events_settled == 0  # a re-import changes nothing


def test_every_stored_event_of_real_seasons_gets_its_offline_features(tmp_path: Path) -> None:
    from betting.ingest.football_data import import_football_data

    engine = _store(tmp_path)
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "football-data"
    with session_scope(engine) as session:
        for name in ("E0_2014-15.csv", "E0_2024-25.csv", "D1_2019-20.csv"):
            import_football_data(session, fixtures / name, on_invalid_price="drop")
    with session_scope(engine) as session:
        batch = load_batch(session)
    online = OnlineFeatures(lambda: engine)
    frame = selection_frame(batch)
    # Every event is before the state's newest start time: each is read from its snapshot.
    _close(online.states.features("football", frame), _offline(batch))
    assert online.states.rebuilds == 1
    for key in batch.events["event_key"].iloc[[0, 500, -1]]:
        _close(online.stored_event(key).rows, _offline(batch).query("event_key == @key"))


def test_an_older_result_folds_the_history_again(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    two = simulate("football", 2, seed=9, teams=4)
    seasons = sorted(two.events["season"].unique())
    later = two.events.loc[two.events["season"] == seasons[1], "event_key"].tolist()
    earlier = two.events.loc[two.events["season"] == seasons[0], "event_key"].tolist()
    with session_scope(engine) as session:
        write_batch(session, _subset(two, later))
    online = OnlineFeatures(lambda: engine)
    assert online.states.current("football").kept.state.applied == len(later)
    with session_scope(engine) as session:
        write_batch(session, _subset(two, earlier))  # an older season imported afterwards
    assert online.states.current("football").kept.state.applied == len(earlier) + len(later)
    assert online.states.rebuilds == 2
    key = later[-1]
    _close(online.stored_event(key).rows, _offline(two).query("event_key == @key"))


def _subset(batch: EventBatch, keys: list[str]) -> EventBatch:
    return EventBatch(
        *(
            getattr(batch, name)[getattr(batch, name)["event_key"].isin(keys)]
            for name in ("events", "markets", "selections", "odds", "results")
        )
    )
