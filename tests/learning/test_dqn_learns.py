"""Learning test: the DQN staking agent learns to size stakes better than flat value betting.

How to run::

    .venv/bin/python -m pytest tests/learning/test_dqn_learns.py -m learning -s

The agent trains through the whole pipeline (decision table, Tune trial, checkpoints, export,
MLflow, registry) on simulated horse racing and is judged on the latest season, never trained
on, against flat value betting (1% of the bankroll on every selection whose model edge is at
least 2%, the selection the agent is offered, settled with ``betting.bankroll.settle_bet``)
and against no bets (log growth 0).

Where the edge is (measured). The simulator's bookmakers price the truth with noise and a
2-8% margin that falls mostly on longshots (favourite-longshot bias). With the default 4
bookmakers no rule on what the agent observes has a positive expected value: on football the
model's best-edge selection at the best closing price returns -2.6% per unit staked, and the
out-of-sample model edge is uncorrelated with the true edge (the model is no better than the
closing market, whose noise is not in its features); so it was with every setting tried (3-5
seasons, 12-20 teams, LightGBM or XGBoost model sources). The edge that exists is line
shopping: with 40 bookmakers the best of 40 closing prices beats the true probability on most
selections (+4.5% on the racing agent's). On
football that makes flat betting itself a good strategy (no room to beat it); in racing the
model's best-edge selection is mostly a longshot (median odds about 25), where a 1% stake's
variance costs more log growth than its edge brings, so flat value betting loses in
expectation, while small stakes on longshots and larger ones on short prices grow the bankroll
(Kelly on the true probabilities, the ceiling: +0.56 per season). That is what the agent must
learn, from 6,000 training races.

What is compared. One season's realized log growth is mostly luck: Kelly on the *true*
probabilities realized less than flat betting on a football holdout where it expected 3.4
against 1.0, and the agent below realized -0.20 and -0.45 with other seeds while expecting
+0.12 and +0.09. The test therefore compares the *expected* log growth under the simulator's
true probabilities (the Kelly objective, free of the holdout's luck) of the stakes each strategy
places on the 2,000 holdout races, and prints the realized numbers beside them.

Results to expect (the 2-core VM; 25 iterations, 25,000 env steps, about 2.5 minutes for the
test, of which about 20 s build the decision table and 100-120 s train):

=====  =====================  ====================  ===========================
seed   expected: agent, flat  realized: agent, flat agent's bets (of 2,000)
=====  =====================  ====================  ===========================
0      +0.110, -1.591         +0.612, -3.207        636 (296 of them at 2%)
0      +0.113, -1.591         +0.025, -3.207        727 (30 at 2%, 502 at 0.5%)
1      +0.121, -1.474         -0.195, -1.091        1,410
2      +0.092, -1.305         -0.446, -2.354        1,260
=====  =====================  ====================  ===========================

(Two runs of one seed differ: RLlib's training is not bit-for-bit repeatable.)

With the default settings the agent's expected log growth crosses zero after about 10,000 env
steps and stays at +0.10 to +0.14 up to 30,000. For scale: no bets 0; 0.25% on every race
+0.04; 1% on prices under 8, a rule picked with hindsight on this very holdout, +0.14; Kelly on
the truth +0.56. The agent learns odds-aware staking about as good as the best simple rule,
not better.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from betting.evaluation import value_bets
from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from rl import config as names
from rl import train
from rl.config import AgentConfig
from rl.env import BettingEnv
from rl.policy import load_policy

pytestmark = [pytest.mark.learning, pytest.mark.usefixtures("ray_local")]

#: The simulated world: racing with 40 bookmakers, 2,000 races a season, 5 seasons (the first
#: only trains the outcome model, three train the agent, the last is the holdout).
WORLD = {"sport": "racing", "seasons": 5, "seed": 7, "bookmakers": 40, "events_per_season": 2000}
#: The default DQN settings (rl.config.DQNSettings), trained on windows of 300 races.
AGENT = {
    "data": {"sport": "racing", "market": "win"},
    "env": {"episode": "window", "window_markets": 300},
    "iterations": 25,
    "checkpoint_every": 5,
    "seed": 0,
    "run_name": "dqn-learns",
}


def expected_log_growth(fractions: np.ndarray, odds: np.ndarray, truth: np.ndarray) -> float:
    """Sum over bets of E[log(1 + f * return)] under the true win probabilities."""
    win = np.log1p(fractions * (odds - 1.0))
    lose = np.log1p(-fractions)
    return float((truth * win + (1.0 - truth) * lose).sum())


def realized_log_growth(fractions: np.ndarray, odds: np.ndarray, won: np.ndarray) -> float:
    return float(np.log1p(fractions * np.where(won == 1, odds - 1.0, -1.0)).sum())


@pytest.fixture(scope="module")
def racing() -> pd.DataFrame:
    batch = simulate(
        WORLD["sport"], WORLD["seasons"], seed=WORLD["seed"], bookmakers=WORLD["bookmakers"],
        events_per_season=WORLD["events_per_season"],
    )  # fmt: skip
    table = build_features(selection_frame(batch))
    return table[table["market_key"] == "win"].reset_index(drop=True)


def test_dqn_sizes_stakes_better_than_flat_value_betting(
    racing: pd.DataFrame, mlflow_store: object
) -> None:
    started = time.perf_counter()
    config = AgentConfig.model_validate(AGENT)
    outcome = train.run(config, table=racing)
    seconds = time.perf_counter() - started

    data = train.decision_data(config, racing)
    decided = load_policy(outcome.artifact).decide(data.holdout)
    env = BettingEnv({"decisions": data.holdout, "env": config.env})
    rows = env.markets.rows  # the same markets and selections, in the same order
    assert (rows[["event_key", "selection"]].to_numpy() == decided[["event_key", "selection"]]
            .to_numpy()).all()  # fmt: skip
    odds, won = env.markets.odds, env.markets.won
    truth = rows["true_probability"].to_numpy(dtype=float)
    agent = decided["fraction"].to_numpy()
    flat = np.where(value_bets(rows["p_model"], odds, min_edge=config.data.min_edge), 0.01, 0.0)

    expected = {"agent": expected_log_growth(agent, odds, truth),
                "flat": expected_log_growth(flat, odds, truth)}  # fmt: skip
    realized = {"agent": realized_log_growth(agent, odds, won),
                "flat": realized_log_growth(flat, odds, won)}  # fmt: skip
    stakes = dict(zip(*np.unique(agent, return_counts=True), strict=True))
    print(
        f"\n{len(rows)} holdout markets, {outcome.env_steps} env steps in {seconds:.0f} s: "
        f"expected log growth agent {expected['agent']:.3f}, flat {expected['flat']:.3f}, "
        f"no bets 0; realized agent {realized['agent']:.3f}, flat {realized['flat']:.3f}; "
        f"agent stakes {stakes}"
    )
    assert realized["agent"] == pytest.approx(outcome.evaluation[names.EVAL_LOG_GROWTH], abs=1e-9)
    assert realized["flat"] == pytest.approx(
        outcome.evaluation[names.EVAL_FLAT_LOG_GROWTH], abs=1e-9
    )
    assert expected["agent"] > 0.0, "no better than not betting"
    assert expected["agent"] > expected["flat"], "no better than flat value betting"
