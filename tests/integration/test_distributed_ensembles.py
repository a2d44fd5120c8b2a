"""Data-parallel LightGBM and XGBoost on the session's local Ray (2 CPUs, 2 Ray Train workers).

A booster grown by two workers on halves of the rows scores like the single-process one and makes
the same artifact: it round-trips through ``save_artifact``/``load_predictor`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from betting.errors import ConfigError
from betting.evaluation import log_loss, market_ids_of
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster.artifacts import ArtifactMeta, load_predictor, save_artifact
from cluster.configs import TrainConfig, load_config
from cluster.settings import get_settings
from cluster.training import split_holdout
from ensembles.config import EnsembleParams
from ensembles.fit import PREDICTOR_PATH, fit_ensemble
from ensembles.predictor import TreePredictor

pytestmark = pytest.mark.usefixtures("ray_local")

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "train" / "lightgbm_distributed.yaml"
TREES = 20
#: How much worse (in holdout log loss) two workers may do than one with the same parameters.
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three simulated seasons of one 12-team league (1X2), the latest held out."""
    frame = build_features(selection_frame(simulate("football", 3, seed=11, teams=12)))
    return split_holdout(frame[frame["market_key"] == "1x2"].reset_index(drop=True), 1)


@pytest.fixture
def storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``BETML_STORAGE_ROOT`` in ``tmp_path``: Ray Train runs go to ``<it>/train``."""
    monkeypatch.setenv("BETML_STORAGE_ROOT", str(tmp_path / "storage"))
    get_settings.cache_clear()
    yield tmp_path / "storage"
    get_settings.cache_clear()


def _meta() -> ArtifactMeta:
    return ArtifactMeta(
        family="test", predictor=PREDICTOR_PATH, sport="football", market="1x2",
        feature_columns=list(FEATURE_COLUMNS), feature_schema_version=FEATURE_SCHEMA_VERSION,
    )  # fmt: skip


def _holdout_log_loss(model: TreePredictor, holdout: pd.DataFrame) -> float:
    p = model.predict_proba(holdout)
    return log_loss(p, holdout["won"].to_numpy(dtype=int), market_ids_of(holdout))


def _params(kind: str) -> dict[str, Any]:
    if kind == "lightgbm":  # the README's example config, with fewer trees
        params = dict(load_config(EXAMPLE, TrainConfig).params)
        params["member_params"]["lightgbm"]["n_estimators"] = TREES
        return params
    return {"kind": kind, "workers": 2, "member_params": {kind: {"n_estimators": TREES}}}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_two_workers_fit_a_booster_like_one_process(
    kind: str, split: tuple[pd.DataFrame, pd.DataFrame], storage_root: Path, tmp_path: Path
) -> None:
    train, holdout = split
    params = _params(kind)
    assert EnsembleParams.model_validate(params).workers == 2
    model = fit_ensemble(train, params, _meta(), seed=0)
    assert [m.kind for m in model.members] == [kind]
    assert len(list((storage_root / "train").glob(f"{kind}-*"))) == 1

    p = model.predict_proba(holdout)
    sums = holdout.assign(p=p).groupby(["event_key", "market_key"])["p"].sum()
    assert np.allclose(sums, 1.0) and (p > 0).all()
    single = fit_ensemble(train, {**params, "workers": 1}, _meta(), seed=0)
    distributed_loss = _holdout_log_loss(model, holdout)
    single_loss = _holdout_log_loss(single, holdout)
    assert np.isfinite(distributed_loss)
    assert abs(distributed_loss - single_loss) < TOLERANCE, (distributed_loss, single_loss)

    loaded = load_predictor(save_artifact(model, tmp_path / "artifact"))
    assert isinstance(loaded, TreePredictor) and loaded.kinds == [kind]
    np.testing.assert_array_equal(loaded.predict_proba(holdout), p)


@pytest.mark.parametrize("kind", ["random_forest", "gradient_boosting", "stacked"])
def test_workers_are_refused_for_kinds_without_a_data_parallel_fit(
    kind: str, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    with pytest.raises(ConfigError, match=f"workers=2.*kind='{kind}'"):
        fit_ensemble(split[0], {"kind": kind, "workers": 2}, _meta(), seed=0)
