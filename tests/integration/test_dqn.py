"""The DQN staking agent on the session's local Ray, tiny: training through Tune with checkpoints,
restore, export to plain torch (same greedy actions as the RLlib module), MLflow runs and the
registry, an interrupted run resumed, and ``betml train dqn`` end to end."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient
from pydantic import ValidationError
from ray.tune import Callback
from typer.testing import CliRunner

from betting.errors import InvalidInput
from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import tracking
from cluster.artifacts import load_predictor
from cluster.configs import load_config
from rl import config as names
from rl import train
from rl.config import AgentConfig
from rl.env import BettingEnv
from rl.export import module_from_checkpoint
from rl.policy import DECISION_OUTPUT, ExportedPolicy, load_policy

REPO = Path(__file__).resolve().parents[2]
NAME = "betml-dqn-football-1x2"
#: A DQN that learns for a few hundred steps: enough to exercise every part, not to learn.
TINY: dict[str, Any] = {
    "iterations": 2,
    "checkpoint_every": 1,
    "env": {"episode": "window", "window_markets": 40},
    "dqn": {
        "train_batch_size": 16,
        "min_env_steps_per_iteration": 150,
        "num_steps_sampled_before_learning_starts": 100,
        "rollout_fragment_length": 8,
        "hidden_layers": [16],
        "head_hidden_layers": [8],
        "replay_capacity": 1000,
        "epsilon": [[0, 1.0], [250, 0.1]],
        "n_step": 2,
        "gamma": 0.5,
    },
    "seed": 3,
}

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Three seasons of a 12-team league: one trains the outcome model, one the agent, and the
    last is the agent's holdout."""
    frame = build_features(selection_frame(simulate("football", 3, seed=1, teams=12)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


def _real_observations(decisions: pd.DataFrame, config: AgentConfig, n: int = 120) -> np.ndarray:
    env = BettingEnv({"decisions": decisions, "env": config.env})
    obs, _ = env.reset(seed=0)
    seen, rng = [obs], np.random.default_rng(0)
    while len(seen) < n:
        obs, _, done, _, _ = env.step(int(rng.integers(env.action_space.n)))
        seen.append(obs)
        if done:
            obs, _ = env.reset()
            seen.append(obs)
    return np.array(seen[:n])


def test_shipped_agent_config_loads() -> None:
    config = load_config(REPO / "configs" / "rl" / "dqn.yaml", AgentConfig)
    assert config.space and set(config.space) >= {"lr", "n_step", "target_network_update_freq"}
    sampled = {k: (d.values[0] if d.values else d.low) for k, d in config.space.items()}
    assert config.dqn_with(sampled).lr == sampled["lr"]


def test_agent_config_refuses_what_cannot_run() -> None:
    with pytest.raises(ValidationError, match="top-level holdout_seasons"):
        AgentConfig.model_validate({"data": {"holdout_seasons": 2}})
    with pytest.raises(ValidationError, match="not a dqn setting"):
        AgentConfig.model_validate({"space": {"alpha": {"type": "uniform", "low": 0, "high": 1}}})
    with pytest.raises(ValidationError, match="both set"):
        AgentConfig.model_validate(
            {"dqn": {"lr": 0.01}, "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1}}}
        )
    with pytest.raises(ValidationError, match="start at 0"):
        AgentConfig.model_validate({"dqn": {"epsilon": [[10, 1.0], [100, 0.1]]}})


def test_train_checkpoint_restore_export_round_trip(
    table: pd.DataFrame, mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    config = AgentConfig.model_validate({**TINY, "run_name": "dqn-round-trip"})
    outcome = train.run(config, table=table, storage_path=tmp_path / "tune")

    # The final policy was evaluated after the last iteration, logged and registered.
    assert outcome.evaluation[names.EVAL_ITERATION] == 2
    assert outcome.model_name == "betml-dqn-football-1x2" and outcome.version == 1
    version = mlflow_store.get_model_version(outcome.model_name, "1")
    assert version.tags[tracking.TAG_HOLDOUT_SCORE_NAME] == names.REGISTRY_SCORE
    growth = outcome.evaluation[names.EVAL_LOG_GROWTH]
    assert float(version.tags[tracking.TAG_HOLDOUT_SCORE]) == pytest.approx(-growth)
    assert math.isfinite(outcome.evaluation[names.EVAL_FLAT_LOG_GROWTH])
    runs = mlflow_store.search_runs(
        [mlflow_store.get_experiment_by_name("betml-tests").experiment_id]
    )
    trial_runs = [r for r in runs if r.data.tags.get(tracking.TAG_SWEEP) == "dqn-round-trip"]
    assert len(trial_runs) == 1 and trial_runs[0].data.metrics[names.TRAIN_ITERATION] == 2
    final = mlflow_store.get_run(outcome.run_id)
    assert final.data.metrics[names.EVAL_LOG_GROWTH] == pytest.approx(growth)
    assert final.data.tags[tracking.TAG_FAMILY] == "dqn"
    summary = json.loads((outcome.artifact.parent / f"{outcome.run_id}-summary" /
                          tracking.SUMMARY_FILE).read_text())  # fmt: skip
    assert summary["registry_score"] == {names.REGISTRY_SCORE: pytest.approx(-growth)}

    # The exported policy acts as the RLlib module of the checkpoint on real observations.
    data = train.decision_data(config, table)
    observations = _real_observations(data.holdout, config)
    policy = load_policy(outcome.artifact)
    assert isinstance(load_predictor(outcome.artifact), ExportedPolicy)
    with outcome.checkpoint.as_directory() as folder:
        module = module_from_checkpoint(folder)
        restored = train.algo_config(config.dqn, config.env, data.train, seed=0).build_algo()
        restored.restore_from_path(folder)
    with torch.no_grad():
        batch = {"obs": torch.from_numpy(observations)}
        greedy = module.forward_inference(batch)["actions"].numpy()
        q_checkpoint = module.compute_q_values(batch)["qf_preds"].numpy()
        q_restored = restored.get_module().compute_q_values(batch)["qf_preds"].numpy()
    restored.stop()
    np.testing.assert_array_equal(policy.act(observations), greedy)
    np.testing.assert_allclose(policy.q_values(observations), q_checkpoint, atol=1e-5)
    np.testing.assert_allclose(q_restored, q_checkpoint, atol=1e-6)

    # Serving's view: one stake per market of a decision table, no RLlib needed.
    decided = policy.decide(data.holdout)
    assert list(decided.columns) == DECISION_OUTPUT
    assert len(decided) == data.holdout[["event_key", "market_key"]].drop_duplicates().shape[0]
    assert set(decided["fraction"]) <= {0.0, *config.env.stake_ladder}
    with pytest.raises(Exception, match="shape"):
        policy.act(observations[:, :-1])


def test_a_sweep_searches_dqn_settings_and_registers_the_best(
    table: pd.DataFrame, mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    space = {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "n_step": {"type": "int", "low": 1, "high": 3},
        "target_network_update_freq": {"type": "logint", "low": 50, "high": 500},
    }
    fixed = {k: v for k, v in TINY["dqn"].items() if k not in space}
    config = AgentConfig.model_validate(
        {**TINY, "dqn": fixed, "space": space, "trials": 2, "run_name": "dqn-sweep"}
    )
    outcome = train.run(config, sweep=True, table=table, storage_path=tmp_path / "tune")

    assert len(outcome.trials) == 2 and not any(row["error"] for row in outcome.trials)
    assert set(outcome.best_params) == set(space)
    best = max(outcome.trials, key=lambda row: row[names.EVAL_LOG_GROWTH])
    assert outcome.best_params == {k: best[k] for k in space}
    trained = load_policy(outcome.artifact).meta.config["dqn"]
    assert trained["lr"] == pytest.approx(outcome.best_params["lr"])
    assert trained["n_step"] == outcome.best_params["n_step"]
    assert outcome.version == 1 and outcome.summary["best_params"] == outcome.best_params
    runs = mlflow_store.search_runs(
        [mlflow_store.get_experiment_by_name("betml-tests").experiment_id],
        filter_string=f"tags.`{tracking.TAG_SWEEP}` = 'dqn-sweep'",
    )
    assert len(runs) == 2
    with pytest.raises(InvalidInput, match="space"):
        train.run(AgentConfig.model_validate(TINY), sweep=True, table=table)


class _InterruptAfterCheckpoints(Callback):
    """Ctrl+C, as Tune sees it, on the trial's second report (each carries a checkpoint).

    Once per test session: the resumed run calls an unpickled copy of this callback too.
    """

    fired = False
    seen: list[int] = []  # noqa: RUF012  # shared by the copies, on purpose

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:  # fmt: skip
        if _InterruptAfterCheckpoints.fired:
            return
        _InterruptAfterCheckpoints.seen.append(int(result[names.TRAIN_ITERATION]))
        if len(_InterruptAfterCheckpoints.seen) == 2:
            _InterruptAfterCheckpoints.fired = True
            signal.raise_signal(signal.SIGINT)


def test_an_interrupted_run_resumes_from_its_checkpoint(
    table: pd.DataFrame, mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    config = AgentConfig.model_validate({**TINY, "iterations": 3, "run_name": "dqn-resume"})
    interrupt = _InterruptAfterCheckpoints()
    with pytest.raises(train.TrainingInterrupted, match="--resume"):
        train.run(config, table=table, storage_path=tmp_path, callbacks=[interrupt])
    assert tracking.list_models() == [], "an interrupted run registers nothing"

    outcome = train.run(config, table=table, storage_path=tmp_path, resume=True)

    # Every report of the trial, both sessions: the resumed one goes on from its checkpoint.
    (progress,) = (tmp_path / "dqn-resume").glob("*/progress.csv")
    reported = pd.read_csv(progress)
    iterations = list(reported[names.TRAIN_ITERATION])
    assert iterations[: len(interrupt.seen)] == interrupt.seen == [1, 2]
    assert iterations[len(interrupt.seen)] in (2, 3) and iterations[-1] == 3
    assert iterations == sorted(iterations), f"a resumed trial must not start over: {iterations}"
    steps = list(reported[names.TRAIN_ENV_STEPS])
    assert steps == sorted(steps) and steps[-1] >= 3 * 150
    assert outcome.evaluation[names.EVAL_ITERATION] == 3 and outcome.version == 1


def test_betml_train_dqn_command_end_to_end(
    mlflow_store: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cluster.cli import app

    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    runner = CliRunner()
    simulated = runner.invoke(
        app, ["data", "simulate", "--sport", "football", "--seasons", "3", "--seed", "4",
              "--teams", "10"],
    )  # fmt: skip
    assert simulated.exit_code == 0, simulated.output
    config = tmp_path / "dqn.yaml"
    config.write_text(yaml.safe_dump({**TINY, "run_name": "cli-dqn"}))

    result = runner.invoke(app, ["train", "dqn", "--config", str(config), "--promote"])

    assert result.exit_code == 0, result.output
    assert "eval log growth" in result.output and "flat value betting" in result.output
    assert "registered as version 1" in result.output and "no champion" in result.output
    assert tracking.resolve("betml-dqn-football-1x2@champion")[1] == 1
    (artifact,) = (tmp_path / "storage" / "models").glob("*/betml_artifact.json")
    policy = load_policy(artifact.parent)
    assert policy.meta.family == "dqn" and policy.meta.config["iterations"] == 2
    no_space = runner.invoke(app, ["sweep", "dqn", "--config", str(config)])
    assert no_space.exit_code != 0 and "no `space`" in no_space.output


def test_the_registry_promotes_the_agent_by_its_named_score(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    import mlflow

    def registered(growth: float, holdout: str = "h1") -> int:
        (tmp_path / f"policy-{growth}").mkdir()
        (tmp_path / f"policy-{growth}" / "q_network.pt").write_text(str(growth))
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(tmp_path / f"policy-{growth}"), "model")
        score = (names.REGISTRY_SCORE, -growth)
        return tracking.register(run.info.run_id, "model", NAME, holdout_id=holdout,
                                 holdout_score=score)  # fmt: skip

    assert registered(0.10) == 1 and tracking.promote(NAME).promoted
    registered(0.05)
    worse = tracking.promote(NAME)
    assert not worse.promoted and "neg_log_growth" in worse.reason
    assert worse.score_name == names.REGISTRY_SCORE and worse.champion_log_loss == -0.10
    registered(0.20)
    better = tracking.promote(NAME)
    assert better.promoted and better.challenger_log_loss == pytest.approx(-0.20)
    with pytest.raises(InvalidInput, match="one of holdout_log_loss and holdout_score"):
        tracking.register("r", "model", NAME, holdout_id="h1")
    with pytest.raises(InvalidInput, match="finite"):
        tracking.register("r", "model", NAME, holdout_id="h1",
                          holdout_score=(names.REGISTRY_SCORE, math.nan))  # fmt: skip
