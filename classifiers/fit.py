"""Training of the Keras classifier: one function from a training table to a predictor.

The training table has one row per selection: ``event_key``, ``market_key``, ``starts_at``,
``won`` (1/0) and the feature columns (NaN allowed); ``selection``, ``position`` and ``season``
may come along and are not used. The latest ``validation_fraction`` of its markets (by start
time) is held out: it stops training early and fits and chooses the calibration. Serving never
imports this module (it loads :class:`classifiers.predictor.KerasPredictor`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from betting.errors import ConfigError, InvalidInput
from betting.evaluation import log_loss, market_ids_of
from classifiers.calibration import CALIBRATION_METHODS, choose_calibration
from classifiers.config import ClassifierParams
from classifiers.model import Preprocessing, build_network, market_layout, market_prior
from classifiers.predictor import PREDICTOR, KerasPredictor
from cluster.artifacts import ArtifactMeta

logger = logging.getLogger(__name__)

METRIC_VALID_LOG_LOSS = "valid/log_loss"
"""Validation log loss of the calibrated model (cross-fitted, see choose_calibration)."""
METRIC_VALID_LOG_LOSS_RAW = "valid/log_loss_uncalibrated"
METRIC_VALID_LOG_LOSS_PREFIX = "valid/log_loss_"
"""Followed by a calibration method: that method's validation log loss."""
METRIC_VALID_MARKETS = "valid/markets"
METRIC_TRAIN_MARKETS = "train/markets"
METRIC_TRAIN_EPOCHS = "train/epochs"
METRIC_TRAIN_BEST_EPOCH = "train/best_epoch"
#: Keys added to ``meta.config``: the parameters used and the calibration chosen.
CONFIG_PARAMS = "params"
CONFIG_CALIBRATION = "calibration_chosen"


def _params(params: ClassifierParams | Mapping[str, Any]) -> ClassifierParams:
    if isinstance(params, ClassifierParams):
        return params
    try:
        return ClassifierParams.model_validate(dict(params))
    except ValidationError as e:
        raise ConfigError(f"classifier parameters are invalid: {e}") from e


def _settled_markets(train: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """The rows of markets with exactly one winner and no missing result."""
    needed = ["event_key", "market_key", "starts_at", "won", *feature_columns]
    missing = [c for c in needed if c not in train.columns]
    if missing:
        raise InvalidInput(f"training table lacks column(s) {missing}")
    ids = market_ids_of(train)
    won = train["won"].to_numpy(dtype=float)
    winners = np.bincount(ids, weights=np.nan_to_num(won, nan=2.0))
    ok = (winners == 1.0) & (np.bincount(ids, weights=~np.isin(won, (0.0, 1.0))) == 0)
    dropped = int((~ok).sum())
    if dropped:
        logger.info("training leaves out %d market(s) without exactly one winner", dropped)
    return train[ok[ids]].reset_index(drop=True)


def time_validation_split(table: pd.DataFrame, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (train, validation): the latest ``fraction`` of markets by start time.

    Markets that start at the same time stay on one side, so the validation part may be a
    little larger than ``fraction``.

    Raises:
        InvalidInput: fewer than one training and two validation markets would be left.
    """
    ids = market_ids_of(table)
    starts = pd.Series(pd.to_datetime(table["starts_at"], utc=True)).groupby(ids).min()
    n_markets = len(starts)
    n_valid = max(1, math.ceil(fraction * n_markets))
    cutoff = starts.sort_values(kind="stable").iloc[max(n_markets - n_valid, 0)]
    valid = (starts >= cutoff).to_numpy()[ids]
    n_valid = int((starts >= cutoff).sum())
    if n_valid < 2 or n_valid == n_markets:
        raise InvalidInput(
            f"{n_markets} market(s) starting up to {starts.max()} are too few to keep a "
            f"validation part of {fraction} (got {n_valid} validation markets)"
        )
    return ~valid, valid


def _meta(meta: ArtifactMeta, params: ClassifierParams) -> ArtifactMeta:
    """``meta`` as this family's artifact: its predictor class and the parameters used."""
    config = {**meta.config, CONFIG_PARAMS: params.model_dump(mode="json")}
    return meta.model_copy(update={"predictor": PREDICTOR, "config": config}, deep=True)


def _arrays(
    rows: pd.DataFrame, preprocessing: Preprocessing, max_selections: int, use_prior: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    layout = market_layout(rows, max_selections)
    x = layout.pad(preprocessing.transform(rows))
    prior = layout.pad(market_prior(rows) if use_prior else np.zeros(len(rows)))
    return [x, layout.mask(), prior], layout.pad(rows["won"].to_numpy(dtype=float))


def fit_classifier(
    train: pd.DataFrame,
    params: ClassifierParams | Mapping[str, Any],
    meta: ArtifactMeta,
    seed: int | None = None,
) -> KerasPredictor:
    """Train, early-stop and calibrate a Keras classifier on ``train``.

    Args:
        train: the training table (see the module docstring); markets without exactly one
            winner are left out.
        params: :class:`ClassifierParams` or a dict of them.
        meta: the artifact description (sport, market, feature columns and version, the
            training config); the predictor's copy of it gains ``config["params"]`` (the
            validated parameters) and ``config["calibration_chosen"]``.
        seed: Keras' global seed (weights, dropout, shuffling); default ``params.seed``.
            Training is repeatable on CPU under one seed.

    Returns:
        The predictor, with ``meta.metrics`` holding the validation log losses (calibrated,
        uncalibrated and per calibration method) and the epochs run.

    Raises:
        ConfigError: invalid ``params``.
        InvalidInput: missing columns or too few markets.
    """
    import keras

    params = _params(params)
    meta = _meta(meta, params)
    table = _settled_markets(train, meta.feature_columns)
    is_train, is_valid = time_validation_split(table, params.validation_fraction)
    train_rows, valid_rows = table[is_train], table[is_valid]
    preprocessing = Preprocessing.fit(train_rows, meta.feature_columns)
    max_selections = int(np.bincount(market_ids_of(table)).max())
    x_train, y_train = _arrays(train_rows, preprocessing, max_selections, params.market_prior)
    x_valid, y_valid = _arrays(valid_rows, preprocessing, max_selections, params.market_prior)

    keras.backend.clear_session()  # a reused Tune worker does not pile up earlier trials' graphs
    keras.utils.set_random_seed(params.seed if seed is None else seed)
    model = build_network(len(meta.feature_columns), params)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=params.patience, restore_best_weights=True
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=params.batch_size,
        epochs=params.epochs,
        validation_data=(x_valid, y_valid),
        callbacks=[stopper],
        shuffle=True,
        verbose=0,
    )
    predictor = KerasPredictor(meta, model, preprocessing, max_selections, params.market_prior)

    raw = predictor.raw_proba(valid_rows)
    valid_ids = market_ids_of(valid_rows)
    won = valid_rows["won"].to_numpy(dtype=float)
    methods = CALIBRATION_METHODS if params.calibration == "auto" else (params.calibration,)
    calibrator, scores = choose_calibration(raw, won, valid_ids, methods)
    predictor.calibrator = calibrator

    epochs_run = len(history.history.get("loss", []))
    meta.config[CONFIG_CALIBRATION] = calibrator.method
    meta.metrics.update(
        {
            METRIC_VALID_LOG_LOSS: scores[calibrator.method],
            METRIC_VALID_LOG_LOSS_RAW: log_loss(raw, won, valid_ids),
            **{f"{METRIC_VALID_LOG_LOSS_PREFIX}{m}": s for m, s in scores.items()},
            METRIC_VALID_MARKETS: float(valid_ids.max() + 1),
            METRIC_TRAIN_MARKETS: float(market_ids_of(train_rows).max() + 1),
            METRIC_TRAIN_EPOCHS: float(epochs_run),
            METRIC_TRAIN_BEST_EPOCH: float(stopper.best_epoch + 1),
        }
    )
    logger.info(
        "trained keras classifier on %d markets for %d epochs: valid log loss %.4f (%s)",
        int(meta.metrics[METRIC_TRAIN_MARKETS]),
        epochs_run,
        meta.metrics[METRIC_VALID_LOG_LOSS],
        calibrator.method,
    )
    return predictor
