"""The online feature store's backends: Redis and the embedded store give identical rows, Redis
keeps the state across restarts and shares it between replicas (real Redis on 127.0.0.1:6379;
``BETML_TEST_REDIS_URL`` overrides it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from betting.batch import EventBatch
from betting.errors import ConfigError
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from betting.store import create_engine_for, load_batch, migrate, session_scope, write_batch
from cluster.feature_store import (
    EmbeddedFeatureStore,
    FeatureStates,
    RedisFeatureStore,
    open_feature_store,
    update_shared_states,
)

REDIS_URL = os.environ.get("BETML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_store() -> Iterator[RedisFeatureStore]:
    store = RedisFeatureStore(REDIS_URL, prefix=f"betml-test:{uuid.uuid4().hex}")
    try:
        store.client.ping()
    except Exception as e:  # noqa: BLE001 - the reason is shown in the skip
        pytest.skip(f"no Redis at {REDIS_URL}: {e}")
    yield store
    keys = list(store.client.scan_iter(f"{store.prefix}:*"))
    if keys:
        store.client.delete(*keys)


def _engine(tmp_path: Path, batch: EventBatch) -> Engine:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'betml.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, batch)
    return engine


def _split(batch: EventBatch, n: int) -> tuple[EventBatch, EventBatch]:
    keys = batch.events["event_key"].tolist()

    def pick(chosen: list[str]) -> EventBatch:
        return EventBatch(
            *(
                getattr(batch, f)[getattr(batch, f)["event_key"].isin(chosen)]
                for f in ("events", "markets", "selections", "odds", "results")
            )
        )

    return pick(keys[:n]), pick(keys[n:])


def test_redis_and_embedded_give_identical_rows(
    tmp_path: Path, redis_store: RedisFeatureStore
) -> None:
    season = simulate("football", 2, seed=12, teams=6)
    first, rest = _split(season, 40)
    engine = _engine(tmp_path, first)
    embedded = FeatureStates(lambda: engine, EmbeddedFeatureStore())
    shared = FeatureStates(lambda: engine, redis_store)
    frame = selection_frame(season)
    for states in (embedded, shared):  # events after the state (read) and before it (snapshots)
        states.current("football")
    a, b = embedded.features("football", frame), shared.features("football", frame)
    np.testing.assert_array_equal(a[FEATURE_COLUMNS].to_numpy(), b[FEATURE_COLUMNS].to_numpy())
    with session_scope(engine) as session:
        write_batch(session, rest)
    a, b = embedded.features("football", frame), shared.features("football", frame)
    np.testing.assert_array_equal(a[FEATURE_COLUMNS].to_numpy(), b[FEATURE_COLUMNS].to_numpy())
    np.testing.assert_allclose(
        b[FEATURE_COLUMNS].to_numpy(float), build_features(frame)[FEATURE_COLUMNS].to_numpy(float),
        rtol=1e-12, atol=1e-15,
    )  # fmt: skip
    assert embedded.version("football") == shared.version("football")


def test_a_restart_with_redis_keeps_the_state(
    tmp_path: Path, redis_store: RedisFeatureStore
) -> None:
    engine = _engine(tmp_path, simulate("football", 1, seed=13, teams=6))
    first = FeatureStates(lambda: engine, redis_store)
    version = first.current("football") and first.version("football")
    assert first.rebuilds == 1
    restarted = FeatureStates(
        lambda: engine, RedisFeatureStore(REDIS_URL, prefix=redis_store.prefix)
    )
    restarted.current("football")
    assert restarted.rebuilds == 0  # read back, not folded again
    assert restarted.version("football") == version


def test_replicas_sharing_redis_see_each_others_results(
    tmp_path: Path, redis_store: RedisFeatureStore
) -> None:
    season = simulate("football", 1, seed=14, teams=6)
    first, rest = _split(season, 20)
    engine = _engine(tmp_path, first)
    one = FeatureStates(lambda: engine, redis_store)
    two = FeatureStates(lambda: engine, RedisFeatureStore(REDIS_URL, prefix=redis_store.prefix))
    one.current("football")
    two.current("football")
    with session_scope(engine) as session:
        write_batch(session, rest)
    # What `betml data import-*` runs after an import: the shared state is updated at once.
    described = update_shared_states(lambda: engine, None, ["football"])
    assert described == []  # an embedded store is the serving processes' business
    one.sync("football")
    assert two.current("football").kept.state.applied == len(season.events)
    assert two.rebuilds == 0 and one.rebuilds == 1


def test_a_state_of_another_feature_version_is_folded_again(tmp_path: Path) -> None:
    engine = _engine(tmp_path, simulate("football", 1, seed=15, teams=4))
    store = EmbeddedFeatureStore()
    states = FeatureStates(lambda: engine, store)
    states.current("football").kept.state.schema_version = "0"  # as left by older code
    states.sync("football")
    assert states.rebuilds == 2
    assert states.current("football").kept.state.schema_version != "0"


def test_feature_store_urls() -> None:
    assert isinstance(open_feature_store(None), EmbeddedFeatureStore)
    assert isinstance(open_feature_store("embedded"), EmbeddedFeatureStore)
    assert isinstance(open_feature_store("redis://127.0.0.1:6379/0"), RedisFeatureStore)
    with pytest.raises(ConfigError, match="BETML_FEATURE_STORE_URL"):
        open_feature_store("memcached://x")


def test_store_reads_for_the_state(tmp_path: Path) -> None:
    from betting.store import latest_settlement, settled_since

    season = simulate("football", 1, seed=16, teams=4)
    engine = _engine(tmp_path, season)
    with session_scope(engine) as session:
        assert latest_settlement(session) == len(season.events)
        keys, top = settled_since(session, 3, sport="football")
        assert len(keys) == len(season.events) - 3 and top == len(season.events)
        assert settled_since(session, top) == ([], top)
        light = load_batch(session, event_keys=keys[:2], with_odds=False)
        assert light.odds.empty and sorted(light.events["event_key"]) == sorted(keys[:2])
