"""Fitting, saving and loading each tree-model kind: the same four operations for all.

Every member predicts P(selection wins) for single selection rows from a float matrix with NaNs;
the ensemble normalises within markets. LightGBM and XGBoost are kept as raw boosters (much
cheaper per call than the sklearn wrappers); the sklearn models are pickled with joblib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np

from ensembles.config import (
    GradientBoostingParams,
    LightGBMParams,
    RandomForestParams,
    XGBoostParams,
    _Params,
)


class Member(Protocol):
    kind: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...
    def save(self, folder: Path) -> None: ...


@dataclass
class LightGBMMember:
    booster: Any
    kind: str = "lightgbm"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_threads=1))

    def save(self, folder: Path) -> None:
        self.booster.save_model(str(folder / "lightgbm.txt"))

    @classmethod
    def load(cls, folder: Path) -> LightGBMMember:
        import lightgbm as lgb

        return cls(lgb.Booster(model_file=str(folder / "lightgbm.txt")))


@dataclass
class XGBoostMember:
    booster: Any
    kind: str = "xgboost"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(x))

    def save(self, folder: Path) -> None:
        self.booster.save_model(str(folder / "xgboost.json"))

    @classmethod
    def load(cls, folder: Path) -> XGBoostMember:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(folder / "xgboost.json"))
        booster.set_param({"nthread": 1})
        return cls(booster)


@dataclass
class SklearnMember:
    model: Any
    kind: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(x)[:, 1])

    def save(self, folder: Path) -> None:
        joblib.dump(self.model, folder / f"{self.kind}.joblib")

    @classmethod
    def load(cls, folder: Path, kind: str) -> SklearnMember:
        model = joblib.load(folder / f"{kind}.joblib")
        if hasattr(model, "n_jobs"):
            model.n_jobs = 1
        return cls(model, kind)


def lightgbm_booster_params(
    params: LightGBMParams, *, seed: int, threads: int
) -> tuple[dict[str, Any], int]:
    """``lgb.train`` parameters and boosting rounds for ``params``."""
    p = params.model_dump()
    rounds = p.pop("n_estimators")
    p.update(objective="binary", seed=seed, deterministic=True, verbose=-1,
             num_threads=threads, force_row_wise=True)  # fmt: skip
    return p, rounds


def xgboost_booster_params(
    params: XGBoostParams, *, seed: int, threads: int
) -> tuple[dict[str, Any], int]:
    """``xgb.train`` parameters and boosting rounds for ``params``."""
    p = params.model_dump()
    rounds = p.pop("n_estimators")
    p.update(objective="binary:logistic", seed=seed, nthread=threads, eta=p.pop("learning_rate"))
    return p, rounds


def fit_member(
    kind: str, params: _Params, x: np.ndarray, y: np.ndarray, *, seed: int, threads: int
) -> Member:
    """Fit one member kind on rows ``x`` (NaN allowed) with binary labels ``y``."""
    if isinstance(params, LightGBMParams):
        import lightgbm as lgb

        p, rounds = lightgbm_booster_params(params, seed=seed, threads=threads)
        return LightGBMMember(lgb.train(p, lgb.Dataset(x, y), num_boost_round=rounds))
    if isinstance(params, XGBoostParams):
        import xgboost as xgb

        p, rounds = xgboost_booster_params(params, seed=seed, threads=threads)
        return XGBoostMember(xgb.train(p, xgb.DMatrix(x, label=y), num_boost_round=rounds))
    if isinstance(params, RandomForestParams):
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(**params.model_dump(), random_state=seed, n_jobs=threads)
        return SklearnMember(rf.fit(x, y), "random_forest")
    if isinstance(params, GradientBoostingParams):
        from sklearn.ensemble import HistGradientBoostingClassifier

        gb = HistGradientBoostingClassifier(
            **params.model_dump(), random_state=seed, early_stopping=False
        )
        return SklearnMember(gb.fit(x, y), "gradient_boosting")
    raise TypeError(f"no member kind for {type(params).__name__}")


def load_member(kind: str, folder: Path) -> Member:
    """Load a member saved by its ``save`` method."""
    if kind == "lightgbm":
        return LightGBMMember.load(folder)
    if kind == "xgboost":
        return XGBoostMember.load(folder)
    return SklearnMember.load(folder, kind)
