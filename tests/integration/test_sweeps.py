"""Sweeps of a model family on the session's local Ray: configs, walk-forward trials, MLflow
runs, the refitted best registered, and the ``betml sweep`` command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from pydantic import ValidationError
from ray import tune
from typer.testing import CliRunner

from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import sweeps, tracking
from cluster.configs import TrainConfig, load_config
from cluster.sweeps import Distribution, SweepConfig, apply_overrides, trial_params

REPO = Path(__file__).resolve().parents[2]
TINY_LGBM = {
    "family": "ensemble",
    "params": {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 15}}},
    "space": {
        "member_params.lightgbm.num_leaves": {"type": "int", "low": 3, "high": 15},
        "member_params.lightgbm.learning_rate": {"type": "loguniform", "low": 0.02, "high": 0.3},
    },
    "folds": 2,
    "trials": 3,
    "seed": 1,
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    frame = build_features(selection_frame(simulate("football", 3, seed=11, teams=12)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "sweeps").glob("*.yaml")))
def test_shipped_sweep_configs_load(path: Path) -> None:
    config = load_config(path, SweepConfig)
    for dist in config.space.values():
        dist.to_tune()
    sampled = {k: (d.values[0] if d.values else d.low) for k, d in config.space.items()}
    assert trial_params(config, sampled)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "train").glob("*.yaml")))
def test_shipped_train_configs_load(path: Path) -> None:
    assert load_config(path, TrainConfig).family in ("ensemble", "classifier")


def test_sweep_config_refuses_what_cannot_run() -> None:
    with pytest.raises(ValidationError, match="both fixed"):
        SweepConfig.model_validate(
            {**TINY_LGBM, "params": {"member_params": {"lightgbm": {"num_leaves": 4}}}}
        )
    with pytest.raises(ValidationError, match="workers"):
        SweepConfig.model_validate({**TINY_LGBM, "params": {**TINY_LGBM["params"], "workers": 2}})
    with pytest.raises(ValidationError, match="space is empty"):
        SweepConfig.model_validate({**TINY_LGBM, "space": {}})
    with pytest.raises(ValidationError, match="below high"):
        Distribution(type="uniform", low=1.0, high=0.5)
    with pytest.raises(ValidationError, match="positive low"):
        Distribution(type="loguniform", low=0.0, high=1.0)
    with pytest.raises(ValidationError, match="whole numbers"):
        Distribution(type="int", low=1.5, high=4)
    with pytest.raises(ValidationError, match="values"):
        Distribution(type="choice")
    with pytest.raises(ValidationError, match="dotted"):
        SweepConfig.model_validate(
            {**TINY_LGBM, "space": {"a..b": {"type": "choice", "values": [1]}}}
        )


def test_sampled_values_land_on_their_dotted_paths() -> None:
    params = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 15}}}
    out = apply_overrides(params, {"member_params.lightgbm.num_leaves": 7, "smote": True})
    lightgbm = {"n_estimators": 15, "num_leaves": 7}
    assert out == {"kind": "lightgbm", "smote": True, "member_params": {"lightgbm": lightgbm}}
    assert params["member_params"]["lightgbm"] == {"n_estimators": 15}, "the original is kept"
    assert isinstance(Distribution(type="int", low=1, high=3).to_tune(), tune.search.sample.Integer)


@pytest.mark.usefixtures("ray_local")
def test_a_sweep_logs_every_trial_and_registers_the_refitted_best(
    table: pd.DataFrame, mlflow_store: MlflowClient
) -> None:
    config = SweepConfig.model_validate(TINY_LGBM)
    outcome = sweeps.run(config, table=table)

    assert outcome.trials == 3 and outcome.errored == 0
    assert outcome.completed + outcome.stopped_early == 3
    finished = [r for r in outcome.trial_table if r[sweeps.METRIC_FOLDS_DONE] == 2]
    assert outcome.best_valid_log_loss == min(r[sweeps.METRIC] for r in finished)
    experiment = mlflow_store.get_experiment_by_name("betml-tests")
    runs = mlflow_store.search_runs([experiment.experiment_id])
    trial_runs = [r for r in runs if r.data.tags.get(tracking.TAG_SWEEP) == outcome.sweep_name]
    assert len(trial_runs) == 3
    assert all(sweeps.METRIC in r.data.metrics for r in trial_runs)

    result = outcome.result
    assert result is not None and result.version == 1
    assert result.model_name == "betml-lightgbm-football-1x2"
    summary = json.loads(next(result.artifact.parent.glob("*-summary/training_summary.json"))
                         .read_text())  # fmt: skip
    assert summary["trials"]["total"] == 3 and summary["search"]["folds"] == 2
    assert summary["best_params"] == outcome.best_params
    fitted = summary["params"]["member_params"]["lightgbm"]
    assert fitted["num_leaves"] == outcome.best_params["member_params.lightgbm.num_leaves"]
    assert fitted["n_estimators"] == 15


@pytest.mark.usefixtures("ray_local")
def test_betml_sweep_command_end_to_end(
    mlflow_store: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cluster.cli import app

    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    runner = CliRunner()
    simulated = runner.invoke(
        app, ["data", "simulate", "--sport", "football", "--seasons", "3", "--seed", "2",
              "--teams", "10"],
    )  # fmt: skip
    assert simulated.exit_code == 0, simulated.output
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({**TINY_LGBM, "sweep_name": "cli-sweep"}))

    result = runner.invoke(
        app, ["sweep", "ensemble", "--config", str(config), "--trials", "2", "--promote"]
    )

    assert result.exit_code == 0, result.output
    assert "best so far" in result.output and "refitted best" in result.output
    assert "market_close" in result.output and "truth" in result.output
    assert tracking.resolve("betml-lightgbm-football-1x2@champion")[1] == 1
    wrong = runner.invoke(app, ["sweep", "classifier", "--config", str(config)])
    assert wrong.exit_code != 0 and "configures a ensemble" in wrong.output
