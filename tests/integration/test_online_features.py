"""Online features are the offline features: the same event, stored or sent raw, gets the rows
``build_features`` gives it over the whole store (no Ray needed)."""

from __future__ import annotations

import time
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


def test_history_is_reread_after_its_ttl(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'betml.db'}")
    migrate(engine)
    season = simulate("football", 1, seed=3, teams=6)
    first = season.events["event_key"].iloc[:10].tolist()
    with session_scope(engine) as session:
        write_batch(session, _subset(season, first))
    clock = [0.0]
    online = OnlineFeatures(lambda: engine, ttl_s=10, clock=lambda: clock[0])
    kept = online.history("football")
    assert len(kept.frame["event_key"].unique()) == 10
    with session_scope(engine) as session:
        write_batch(session, season)
    assert online.history("football") is kept  # within the TTL: the kept copy
    later = season.events["event_key"].iloc[20]
    assert online.stored_event(later).event_key == later  # a stored key not kept: read now
    clock[0] = 11.0
    online.history("football")  # stale: re-read in the background, the old copy answers
    for _ in range(100):  # the re-read runs in a thread
        if online.history("football").loaded_at == 11.0:
            break
        time.sleep(0.05)
    assert online.history("football").loaded_at == 11.0


def _subset(batch: EventBatch, keys: list[str]) -> EventBatch:
    return EventBatch(
        *(
            getattr(batch, name)[getattr(batch, name)["event_key"].isin(keys)]
            for name in ("events", "markets", "selections", "odds", "results")
        )
    )
