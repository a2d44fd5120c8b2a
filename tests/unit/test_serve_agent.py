"""The strategy agent's serving side without Ray: its stakes equal the backtest policy's on the
same markets, the decision rows serving builds, the bankroll state, the agent's arguments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from betting.errors import InvalidInput
from betting.evaluation import market_ids_of
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from rl import config as rl_config
from rl.decisions import DECISION_COLUMNS
from rl.env import EnvConfig, Markets, market_observation, observation_names
from rl.policy import DECISION_OUTPUT, ExportedPolicy, NetworkSpec, QNetwork
from serve.agent import stake_markets
from serve.agent_rows import NEUTRAL_STATE, BankrollState, decision_rows
from serve.config import FAMILY_DQN, ServeArgs


@pytest.fixture(scope="module")
def league() -> pd.DataFrame:
    """The 1x2 selection rows of a simulated 10-team season with their features."""
    frame = build_features(selection_frame(simulate("football", 1, seed=4, teams=10)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


@pytest.fixture(scope="module")
def decisions(league: pd.DataFrame) -> pd.DataFrame:
    """Decision rows of every market with a noisy model, each market its own season (so the
    backtest policy meets every market from the neutral bankroll state)."""
    rng = np.random.default_rng(0)
    ids = market_ids_of(league)
    parts = []
    for market in range(ids.max() + 1):
        rows = league[ids == market]
        p = rows["close_implied"].to_numpy() * rng.uniform(0.7, 1.3, len(rows))
        parts.append(decision_rows(rows, p / p.sum(), rows["close_best"].to_numpy()))
    table = pd.concat(parts, ignore_index=True)
    table["season"] = table["event_key"]
    return table


def random_policy(seed: int, scale: float = 3.0) -> ExportedPolicy:
    env = EnvConfig.model_validate({})
    torch.manual_seed(seed)
    spec = NetworkSpec.model_validate({
        "n_observations": len(observation_names(env)), "n_actions": len(env.stake_ladder) + 1,
        "hidden_layers": [16], "head_hidden_layers": [8], "dueling": True,
    })  # fmt: skip
    network = QNetwork(spec)
    with torch.no_grad():
        for layer in network.linear_layers():
            layer.weight.mul_(scale)
    return ExportedPolicy(network, env)


def test_served_stakes_equal_the_backtest_policy_on_the_same_markets(
    decisions: pd.DataFrame,
) -> None:
    policy = random_policy(seed=1)
    expected = policy.decide(decisions)
    one_by_one = [
        stake_markets(policy, [decisions[decisions["event_key"] == key]], [NEUTRAL_STATE])[0]
        for key in decisions["event_key"].unique()
    ]
    together = stake_markets(policy, [decisions], [NEUTRAL_STATE])[0]
    assert expected["fraction"].nunique() > 1  # the policy does not answer one stake to all
    for got in (pd.concat(one_by_one, ignore_index=True), together):
        assert list(got.columns) == DECISION_OUTPUT
        merged = expected.merge(got, on=["event_key", "market_key"], suffixes=("", "_served"))
        assert len(merged) == len(expected)
        assert (merged["selection"] == merged["selection_served"]).all()
        np.testing.assert_array_equal(merged["fraction"], merged["fraction_served"])


def test_each_query_is_answered_from_its_own_bankroll_state(decisions: pd.DataFrame) -> None:
    policy = random_policy(seed=1)
    market = decisions[decisions["event_key"] == decisions["event_key"].iloc[0]]
    states = [NEUTRAL_STATE, BankrollState(log_bankroll=-1.0, drawdown=0.6, progress=0.9)]
    answers = stake_markets(policy, [market, market], states)
    assert [len(a) for a in answers] == [1, 1]
    static = Markets(market, policy.env_config).static[0]
    for answer, state in zip(answers, states, strict=True):
        observation = market_observation(
            static, log_bankroll=state.log_bankroll, drawdown=state.drawdown,
            recent_return=state.recent_return, progress=state.progress,
        )  # fmt: skip
        action = policy.act_one(observation)
        assert answer["fraction"].iloc[0] == policy.env_config.stake_of(action)
    assert answers[0]["event_key"].iloc[0] == market["event_key"].iloc[0]


def test_decision_rows_take_the_decision_tables_reference_prices(league: pd.DataFrame) -> None:
    rows = league.iloc[:3]
    p = np.array([0.5, 0.3, 0.2])
    out = decision_rows(rows, p, rows["close_best"].to_numpy())
    assert list(out.columns) == [*DECISION_COLUMNS, *FEATURE_COLUMNS]
    closing = rows["close_ref"].fillna(rows["close_mean"]).to_numpy()
    np.testing.assert_allclose(out["closing_odds"], closing)
    np.testing.assert_allclose(out["p_market"], (1 / closing) / (1 / closing).sum())
    np.testing.assert_allclose(out["p_model"], p)
    assert out["won"].isna().all() and out["true_probability"].isna().all()

    live = rows.assign(close_ref=np.nan, close_mean=np.nan)  # not closed yet
    prices = np.array([2.0, 3.5, 4.0])
    out = decision_rows(live, p, prices)
    np.testing.assert_allclose(out["closing_odds"], prices)
    assert out["p_market"].sum() == pytest.approx(1.0)


def test_decision_rows_refuse_what_the_agent_cannot_observe(league: pd.DataFrame) -> None:
    rows = league.iloc[:3]
    with pytest.raises(InvalidInput, match="differ in number"):
        decision_rows(rows, np.array([0.5, 0.5]), np.array([2.0, 3.0, 4.0]))
    with pytest.raises(InvalidInput, match="above 1"):
        decision_rows(rows, np.array([0.5, 0.3, 0.2]), np.array([2.0, 1.0, 4.0]))


def test_bankroll_state_refuses_impossible_values() -> None:
    with pytest.raises(InvalidInput, match="drawdown"):
        BankrollState(drawdown=1.0)
    with pytest.raises(InvalidInput, match="progress"):
        BankrollState(progress=1.5)
    with pytest.raises(InvalidInput, match="finite"):
        BankrollState(log_bankroll=float("nan"))


def test_agent_arguments() -> None:
    assert FAMILY_DQN == rl_config.FAMILY  # serving does not import the training side
    assert ServeArgs().agent is not None and ServeArgs().agent.alias == "champion"  # type: ignore[union-attr]
    assert ServeArgs.model_validate({"agent": None}).agent is None
    with pytest.raises(ValidationError, match="agent family 'lightgbm'"):
        ServeArgs.model_validate({"agent": {"family": "lightgbm"}})
