"""Tree ensembles through the shared training pipeline: fit, judge, log, register, reload."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import tracking
from cluster.artifacts import ArtifactMismatch, load_predictor, read_meta, save_artifact
from cluster.importance import IMPORTANCE_ARTIFACT
from cluster.training import DataConfig, promote_challenger, split_holdout, train_and_log
from ensembles.config import EnsembleParams
from ensembles.fit import PREDICTOR_PATH, fit_ensemble, out_of_fold

SMALL = {"n_estimators": 30}
DATA = DataConfig(sport="football", market="1x2", holdout_seasons=1)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Three simulated seasons of one 12-team league, 1X2 markets with features."""
    frame = build_features(selection_frame(simulate("football", 3, seed=11, teams=12)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


def _market_sums(table: pd.DataFrame, p: np.ndarray) -> np.ndarray:
    return table.assign(p=p).groupby(["event_key", "market_key"])["p"].sum().to_numpy()


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "random_forest", "gradient_boosting"])
def test_each_member_kind_trains_and_round_trips(
    kind: str, table: pd.DataFrame, mlflow_store: object, tmp_path: Path
) -> None:
    params = {"kind": kind, "member_params": {kind: SMALL if kind != "gradient_boosting"
                                              else {"max_iter": 30}}}  # fmt: skip
    result = train_and_log(
        kind.replace("_", "-"), fit_ensemble, params, DATA, predictor_path=PREDICTOR_PATH,
        table=table, register=False,
    )  # fmt: skip
    _, holdout = split_holdout(table, 1)
    model = load_predictor(result.artifact)
    p = model.predict_proba(holdout)
    assert np.allclose(_market_sums(holdout, p), 1.0) and (p > 0).all()
    assert np.isfinite(result.holdout_log_loss)
    assert set(result.report.index) >= {"model", "market_close", "truth", "base_rate"}
    summary = json.loads(next(result.artifact.parent.glob("*-summary/training_summary.json"))
                         .read_text())  # fmt: skip
    assert summary["samples"]["holdout_seasons"] == ["2022-23"]
    importance = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{IMPORTANCE_ARTIFACT}")
    assert sorted(importance["feature"]) == sorted(model.meta.feature_columns)
    # The model leans on the market's prices: shuffling them must cost log loss.
    top = importance["feature"][: len(importance["feature"]) // 4]
    assert importance["importance"][0] > 0 and any("close" in f or "implied" in f for f in top)


def test_registry_and_promotion(table: pd.DataFrame, mlflow_store: object) -> None:
    good = {"kind": "lightgbm", "member_params": {"lightgbm": SMALL}}
    first = train_and_log("lightgbm", fit_ensemble, good, DATA, predictor_path=PREDICTOR_PATH,
                          table=table)  # fmt: skip
    assert first.version == 1
    assert tracking.promote(first.model_name).promoted
    # A deliberately weak challenger: one tree of two leaves.
    weak = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 1, "num_leaves": 2,
                                                             "learning_rate": 0.01}}}  # fmt: skip
    second = train_and_log("lightgbm", fit_ensemble, weak, DATA, predictor_path=PREDICTOR_PATH,
                           table=table)  # fmt: skip
    assert second.holdout_log_loss > first.holdout_log_loss
    decision = tracking.promote(second.model_name)
    assert not decision.promoted
    assert tracking.resolve(f"{first.model_name}@champion") == (first.model_name, 1)


def test_promotion_rescores_a_champion_judged_on_an_older_holdout(
    table: pd.DataFrame, mlflow_store: object
) -> None:
    # The champion was judged when the holdout season had only its first half of matches.
    holdout_season = table["season"].max()
    in_holdout = table["season"] == holdout_season
    cut = table.loc[in_holdout, "starts_at"].median()
    earlier = table[~in_holdout | (table["starts_at"] < cut)].reset_index(drop=True)
    weak = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 1, "num_leaves": 2,
                                                             "learning_rate": 0.01}}}  # fmt: skip
    champion = train_and_log("lightgbm", fit_ensemble, weak, DATA, predictor_path=PREDICTOR_PATH,
                             table=earlier)  # fmt: skip
    assert tracking.promote(champion.model_name).promoted
    good = {"kind": "lightgbm", "member_params": {"lightgbm": SMALL}}
    challenger = train_and_log("lightgbm", fit_ensemble, good, DATA,
                               predictor_path=PREDICTOR_PATH, table=table)  # fmt: skip
    plain = tracking.promote(challenger.model_name)
    assert not plain.promoted and "different holdouts" in plain.reason

    decision = promote_challenger(challenger.model_name, DATA, table=table)
    assert decision.promoted, decision.reason
    assert decision.champion_holdout_id == decision.challenger_holdout_id
    rescored = tracking.resolve(f"{champion.model_name}/{champion.version}")
    tags = mlflow.MlflowClient().get_model_version(*map(str, rescored)).tags
    assert float(tags[tracking.TAG_HOLDOUT_LOG_LOSS]) == pytest.approx(decision.champion_log_loss)
    assert tags["betml.previous_holdout_id"] != tags[tracking.TAG_HOLDOUT_ID]
    assert tracking.resolve(f"{champion.model_name}@champion")[1] == challenger.version


def test_stacking_trains_on_out_of_fold_predictions_only(table: pd.DataFrame) -> None:
    train, _ = split_holdout(table, 1)
    params = EnsembleParams(kind="stacked", members=["lightgbm", "random_forest"],
                            member_params={"lightgbm": SMALL, "random_forest": SMALL})  # fmt: skip
    from ensembles.fit import _matrix

    columns = [c for c in load_columns()]
    x, y, _ = _matrix(train, columns)
    oof = out_of_fold(train, x, y, ["lightgbm", "random_forest"], params, columns, seed=0)
    predicted = oof.fold_of_row >= 0
    assert predicted.any() and not predicted.all()
    assert np.isnan(oof.probabilities[~predicted]).all()
    for fold, (end, start) in enumerate(zip(oof.train_end, oof.test_start, strict=True)):
        rows = oof.fold_of_row == fold
        assert end < start, "a fold's members trained on events at or after its test window"
        assert (train.loc[rows, "starts_at"] >= start).all()


def test_stacked_ensemble_and_feature_version_refusal(
    table: pd.DataFrame, mlflow_store: object, tmp_path: Path
) -> None:
    params = {"kind": "stacked", "members": ["lightgbm", "xgboost"],
              "member_params": {"lightgbm": SMALL, "xgboost": SMALL}}  # fmt: skip
    result = train_and_log("stacked", fit_ensemble, params, DATA, predictor_path=PREDICTOR_PATH,
                           table=table, register=False)  # fmt: skip
    model = load_predictor(result.artifact)
    assert model.stacker is not None and len(model.members) == 2
    assert "validation/stacked_oof_log_loss" in model.meta.metrics
    stale = model.meta.model_copy(update={"feature_schema_version": "0"})
    model.meta = stale
    folder = save_artifact(model, tmp_path / "stale")
    assert read_meta(folder).feature_schema_version == "0"
    with pytest.raises(ArtifactMismatch, match="feature schema"):
        load_predictor(folder)


def test_smote_nc_option_fits(table: pd.DataFrame, mlflow_store: object) -> None:
    params = {"kind": "lightgbm", "smote": True, "member_params": {"lightgbm": SMALL}}
    result = train_and_log("lightgbm", fit_ensemble, params, DATA, predictor_path=PREDICTOR_PATH,
                           table=table, register=False)  # fmt: skip
    assert np.isfinite(result.holdout_log_loss)


def load_columns() -> list[str]:
    from betting.features import FEATURE_COLUMNS

    return list(FEATURE_COLUMNS)
