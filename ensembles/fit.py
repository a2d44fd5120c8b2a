"""Fitting the tree-model family: single members, or members stacked on out-of-fold predictions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.evaluation import log_loss, market_ids_of, normalise_within_markets
from betting.splits import walk_forward_splits
from cluster.artifacts import ArtifactMeta
from ensembles.config import EnsembleParams
from ensembles.distributed import check_distributable, fit_member_distributed
from ensembles.members import Member, fit_member
from ensembles.predictor import Stacker, TreePredictor, logit

logger = logging.getLogger(__name__)

PREDICTOR_PATH = "ensembles.predictor:TreePredictor"


def _matrix(train: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = train[columns].to_numpy(dtype=float, copy=True)
    with np.errstate(all="ignore"):
        medians = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    medians = np.nan_to_num(medians)
    missing = np.isnan(x)
    x[missing] = np.take(medians, np.nonzero(missing)[1])
    return x, train["won"].to_numpy(dtype=int), medians


def _resample(x: np.ndarray, y: np.ndarray, columns: list[str], seed: int) -> tuple[Any, Any]:
    """SMOTE-NC oversampling of winners; indicator columns are treated as categorical."""
    from imblearn.over_sampling import SMOTENC

    categorical = [i for i, c in enumerate(columns) if c.startswith("is_")]
    sampler = SMOTENC(categorical_features=categorical, random_state=seed)
    return sampler.fit_resample(x, y)


def _fit_members(
    kinds: list[str], params: EnsembleParams, x: np.ndarray, y: np.ndarray,
    columns: list[str], seed: int,
) -> list[Member]:  # fmt: skip
    if params.smote:
        x, y = _resample(x, y, columns, seed)
    if params.workers > 1:
        return [
            fit_member_distributed(k, params.params_of(k), x, y, seed=seed,
                                   threads=params.threads, workers=params.workers)
            for k in kinds
        ]  # fmt: skip
    return [
        fit_member(k, params.params_of(k), x, y, seed=seed, threads=params.threads) for k in kinds
    ]


@dataclass
class OutOfFold:
    """Members' predictions for rows they were not trained on, with each fold's boundary."""

    probabilities: np.ndarray  # rows x members, NaN where no fold predicted the row
    fold_of_row: np.ndarray  # -1 for rows before the first test window
    train_end: list[pd.Timestamp]  # latest start time each fold trained on
    test_start: list[pd.Timestamp]


def out_of_fold(
    train: pd.DataFrame, x: np.ndarray, y: np.ndarray, kinds: list[str],
    params: EnsembleParams, columns: list[str], seed: int,
) -> OutOfFold:  # fmt: skip
    """Walk-forward out-of-fold predictions: each fold's members saw only earlier events."""
    splits = walk_forward_splits(
        train["starts_at"], n_splits=params.stack_folds, groups=train["event_key"]
    )
    probs = np.full((len(train), len(kinds)), np.nan)
    fold_of_row = np.full(len(train), -1)
    train_end, test_start = [], []
    for i, split in enumerate(splits):
        members = _fit_members(kinds, params, x[split.train], y[split.train], columns, seed + i)
        probs[split.test] = np.column_stack([m.predict(x[split.test]) for m in members])
        fold_of_row[split.test] = i
        train_end.append(train["starts_at"].iloc[split.train].max())
        test_start.append(train["starts_at"].iloc[split.test].min())
    return OutOfFold(probs, fold_of_row, train_end, test_start)


def fit_stacker(oof: OutOfFold, y: np.ndarray) -> Stacker:
    """Logistic regression of the outcome on the members' out-of-fold logits."""
    from sklearn.linear_model import LogisticRegression

    rows = oof.fold_of_row >= 0
    if rows.sum() < 10 or len(np.unique(y[rows])) < 2:
        raise InvalidInput("too few out-of-fold rows to fit the stacking meta-learner")
    model = LogisticRegression(C=1.0).fit(logit(oof.probabilities[rows]), y[rows])
    return Stacker(model.coef_[0].tolist(), float(model.intercept_[0]))


def fit_ensemble(
    train: pd.DataFrame, params: dict[str, Any], meta: ArtifactMeta, seed: int
) -> TreePredictor:
    """Fit the configured member, or the stacked ensemble, on a training table.

    With ``workers`` > 1 a LightGBM or XGBoost member trains data-parallel with Ray Train.

    Raises:
        ConfigError: ``workers`` > 1 for another kind, or without a connected Ray.
    """
    config = EnsembleParams.model_validate(params)
    check_distributable(config)
    columns = meta.feature_columns
    x, y, medians = _matrix(train, columns)
    kinds = list(config.members) if config.kind == "stacked" else [config.kind]
    stacker = None
    if config.kind == "stacked":
        oof = out_of_fold(train, x, y, kinds, config, columns, seed)
        stacker = fit_stacker(oof, y)
        rows = oof.fold_of_row >= 0
        p = normalise_within_markets(
            stacker.combine(oof.probabilities[rows]), market_ids_of(train[rows])
        )
        meta.metrics["validation/stacked_oof_log_loss"] = log_loss(
            p, y[rows], market_ids_of(train[rows])
        )
    members = _fit_members(kinds, config, x, y, columns, seed)
    meta.config.setdefault("params", params)
    return TreePredictor(meta, medians, members, stacker, kinds)
