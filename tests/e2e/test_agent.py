"""End to end: the strategy agent's stakes through the Serve application (gRPC and HTTP).

The app of ``conftest.served`` starts with no agent registered (it is optional): asking for the
agent's stake is NOT_FOUND. A tiny DQN is then trained in this process on the e2e store (the
settings of ``tests/integration/test_dqn.py``), exported, registered and made champion; the app
loads it on first use (UNAVAILABLE until loaded) and its stakes equal what
``rl.policy.ExportedPolicy.decide`` (the backtest's ``--strategy dqn``) chooses on the same
markets from the neutral bankroll state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from betting.batch import EventBatch
from betting.evaluation import market_ids_of, market_probabilities_from_odds
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from cluster import tracking
from rl.decisions import DECISION_COLUMNS
from rl.policy import ExportedPolicy, load_policy
from serve.proto.betml.v1 import ml_service_pb2 as pb
from tests.e2e.conftest import API_KEY, METADATA, Served

pytestmark = pytest.mark.slow

AGENT = "betml-dqn-football-1x2"
#: A DQN that learns for one short iteration (tests/integration/test_dqn.py's tiny settings).
TINY: dict[str, Any] = {
    "iterations": 1,
    "env": {"episode": "window", "window_markets": 40},
    "dqn": {
        "train_batch_size": 16, "min_env_steps_per_iteration": 150,
        "num_steps_sampled_before_learning_starts": 100, "rollout_fragment_length": 8,
        "hidden_layers": [16], "head_hidden_layers": [8], "replay_capacity": 1000,
        "epsilon": [[0, 1.0], [250, 0.1]], "n_step": 2, "gamma": 0.5,
    },
    "seed": 3,
}  # fmt: skip


@dataclass
class Agent:
    policy: ExportedPolicy
    version: int


@pytest.fixture(scope="module")
def keys(stored: EventBatch) -> list[str]:
    """Matches of the last season."""
    return [str(k) for k in stored.events["event_key"].iloc[-10:]]


@pytest.fixture(scope="module")
def agent(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Agent:
    """Train, export and register a tiny DQN on the e2e store, then make it champion."""
    from cluster.training import ARTIFACT_PATH
    from rl import train
    from rl.config import REGISTRY_SCORE, AgentConfig
    from rl.export import export_policy

    config = AgentConfig.model_validate(TINY)
    data = train.decision_data(config)
    algo = train.algo_config(config.dqn, config.env, data.train, seed=config.seed).build_algo()
    try:
        algo.train()
        folder = export_policy(
            algo.get_module(), tmp_path_factory.mktemp("agent") / "policy",
            env_config=config.env, sport="football", market="1x2",
        )  # fmt: skip
    finally:
        algo.stop()
    with mlflow.start_run(run_name="e2e-agent") as run:
        mlflow.log_artifacts(str(folder), ARTIFACT_PATH)
    version = tracking.register(
        run.info.run_id, ARTIFACT_PATH, AGENT, holdout_id=data.holdout_id,
        holdout_score=(REGISTRY_SCORE, 0.0),
    )  # fmt: skip
    served.client.set_registered_model_alias(AGENT, tracking.ALIAS_CHAMPION, str(version))
    return Agent(load_policy(folder), version)


def with_agent(key: str, bankroll: float | None = 1000.0) -> pb.GetPredictionRequest:
    staking = pb.StakingOptions(include_agent_stake=True)
    if bankroll is not None:
        staking.bankroll = bankroll
    return pb.GetPredictionRequest(event_key=key, market_key="1x2", staking=staking)


def once_loaded(call: Callable[[], Any], timeout_s: float = 60.0) -> tuple[Any, list[str]]:
    """``call()``'s answer once the agent is loaded, and the codes it got before."""
    codes: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call(), codes
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            codes.append(e.code().name)
            time.sleep(0.25)


def backtest_stakes(
    policy: ExportedPolicy, stored: EventBatch, answers: list[pb.GetPredictionResponse]
) -> pd.DataFrame:
    """What ``policy.decide`` (the backtest) stakes on the answered markets: their decision rows
    built as :func:`rl.decisions.decision_table` builds them (best closing price, reference
    closing price, the served model's probabilities), each market its own season so that each
    is met from the neutral bankroll state an online request implies."""
    offline = build_features(selection_frame(stored))
    parts = []
    for answer in answers:
        rows = offline[(offline["event_key"] == answer.event_key)
                       & (offline["market_key"] == "1x2")].copy()  # fmt: skip
        assert rows["selection"].tolist() == [s.selection for s in answer.selections]
        rows["p_model"] = [s.probability for s in answer.selections]
        rows["odds"] = rows["close_best"].fillna(rows["close_mean"])
        rows["closing_odds"] = rows["close_ref"].fillna(rows["close_mean"])
        rows["p_market"] = market_probabilities_from_odds(rows["closing_odds"], market_ids_of(rows))
        rows["season"] = answer.event_key
        rows["true_probability"] = np.nan
        parts.append(rows[[*DECISION_COLUMNS, *FEATURE_COLUMNS]])
    return policy.decide(pd.concat(parts, ignore_index=True)).set_index("event_key")


# --- before any agent is registered (the app starts and is healthy without one) --------------


def test_no_agent_registered_is_not_found(served: Served, stored: EventBatch) -> None:
    health = served.stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
    assert health.status == pb.SERVING_STATUS_SERVING
    assert AGENT not in [m.name for m in health.models]
    key = str(stored.events["event_key"].iloc[-1])
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.GetPrediction(with_agent(key), metadata=METADATA, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert AGENT in caught.value.details()
    url = f"{served.http}/api/v1/predict/strategy-recommendation"
    body = {"event_key": key, "market_key": "1x2"}
    answer = httpx.post(url, json=body, headers={"x-api-key": API_KEY}, timeout=30)
    assert answer.status_code == 404 and AGENT in answer.json()["message"]


# --- with the agent registered ----------------------------------------------------------------


def test_agent_stakes_equal_the_backtest_policys(
    served: Served, agent: Agent, stored: EventBatch, keys: list[str]
) -> None:
    first, codes = once_loaded(
        lambda: served.stub.GetPrediction(with_agent(keys[0]), metadata=METADATA, timeout=30)
    )
    assert codes and set(codes) == {"UNAVAILABLE"}  # the agent loads on first use
    batch = served.stub.BatchPredict(
        pb.BatchPredictRequest(requests=[with_agent(k) for k in keys]), metadata=METADATA,
        timeout=60,
    )  # fmt: skip
    answers = [r.prediction for r in batch.results]
    assert [a.event_key for a in answers] == keys
    expected = backtest_stakes(agent.policy, stored, answers)
    assert (expected["fraction"] > 0).any()  # the seeded tiny agent bets: not 0 == 0 only
    for answer in [first, *answers]:
        assert answer.agent_model.name == AGENT
        assert answer.agent_model.version == str(agent.version)
        assert answer.agent_model.alias == tracking.ALIAS_CHAMPION
        want = expected.loc[answer.event_key]
        for s in answer.selections:
            share = want["fraction"] if s.selection == want["selection"] else 0.0
            assert s.HasField("agent_stake_fraction") and s.agent_stake_fraction == share
            assert s.agent_stake == pytest.approx(share * 1000.0)
        assert sum(s.agent_stake_fraction > 0 for s in answer.selections) <= 1
    assert first.selections == answers[0].selections

    health = served.stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
    [model] = [m for m in health.models if m.name == AGENT]
    assert model.state == pb.MODEL_STATE_LOADED and model.version == str(agent.version)
    assert health.status == pb.SERVING_STATUS_SERVING


def test_agent_fields_only_when_asked(served: Served, agent: Agent, keys: list[str]) -> None:
    plain = pb.GetPredictionRequest(event_key=keys[1], market_key="1x2")
    answer = served.stub.GetPrediction(plain, metadata=METADATA, timeout=30)
    assert not answer.HasField("agent_model")
    assert not any(s.HasField("agent_stake_fraction") or s.HasField("agent_stake")
                   for s in answer.selections)  # fmt: skip
    asked, _ = once_loaded(
        lambda: served.stub.GetPrediction(
            with_agent(keys[1], bankroll=None), metadata=METADATA, timeout=30
        )
    )
    assert asked.HasField("agent_model")
    assert all(s.HasField("agent_stake_fraction") and not s.HasField("agent_stake")
               for s in asked.selections)  # fmt: skip


def test_strategy_recommendation_over_http(served: Served, agent: Agent, keys: list[str]) -> None:
    grpc_answer, _ = once_loaded(
        lambda: served.stub.GetPrediction(with_agent(keys[2], 250.0), metadata=METADATA, timeout=30)
    )
    url = f"{served.http}/api/v1/predict/strategy-recommendation"
    headers = {"x-api-key": API_KEY}
    body = {"event_key": keys[2], "market_key": "1x2", "staking": {"bankroll": 250}}
    answer = httpx.post(url, json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    by_selection = {s.selection: s for s in grpc_answer.selections}
    edges = {s.selection: s.expected_value for s in grpc_answer.selections}
    assert got["selection"] == max(edges, key=edges.__getitem__)  # the agent sizes the best edge
    assert got["agent_stake_fraction"] == by_selection[got["selection"]].agent_stake_fraction
    assert got["agent_stake"] == pytest.approx(got["agent_stake_fraction"] * 250)
    assert got["is_bet"] == (got["agent_stake_fraction"] > 0)
    assert got["agent_model"]["name"] == AGENT and got["model"]["name"] == grpc_answer.model.name
    assert got["agent_state"] == {"log_bankroll": 0.0, "drawdown": 0.0, "recent_return": 0.0,
                                  "progress": 0.0}  # fmt: skip
    assert len(got["selections"]) == 3

    deep = {**body, "agent_state": {"drawdown": 0.5, "progress": 0.5, "log_bankroll": -0.7}}
    answer = httpx.post(url, json=deep, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["agent_state"]["drawdown"] == 0.5

    bad = [
        ({**body, "agent_state": {"drawdown": 1.5}}, "agent_state.drawdown"),
        ({**body, "agent_state": {"mood": 1}}, "agent_state.mood"),
        ({**body, "staking": {"bankroll": -1}}, "staking.bankroll"),
        ({"market_key": "1x2"}, "body"),
    ]
    for request, field in bad:
        answer = httpx.post(url, json=request, headers=headers, timeout=30)
        assert answer.status_code == 422, (request, answer.text)
        fields = [v["field"] for v in answer.json()["field_violations"]]
        assert field in fields, (request, fields)
    answer = httpx.post(url, json={**body, "event_key": "nope"}, headers=headers, timeout=30)
    assert answer.status_code == 404
