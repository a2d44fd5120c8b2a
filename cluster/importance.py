"""Permutation feature importance of any outcome model, measured on its holdout.

A feature's importance is how much the holdout log loss grows when that feature's column is
shuffled across the holdout's rows (its link to the outcome broken, its distribution kept),
averaged over a few shuffles. It needs nothing from the family but ``predict_proba``, so trees,
stacks and the Keras classifier are measured the same way and can be compared. Training logs it
with every run as ``feature_importance.json``; ``GET /api/v1/visualize/feature-importance`` plots
it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.evaluation import log_loss, market_ids_of
from cluster.artifacts import Predictor

#: The run artifact holding a model's importances.
IMPORTANCE_ARTIFACT = "feature_importance.json"


def permutation_importance(
    predictor: Predictor, holdout: pd.DataFrame, *, repeats: int = 3, seed: int = 0
) -> pd.DataFrame:
    """Per feature: the mean and spread of the holdout log-loss increase when it is shuffled.

    Args:
        predictor: a fitted outcome model.
        holdout: settled rows with the model's feature columns, ``won`` and the market keys.
        repeats: shuffles per feature.
        seed: seed of the shuffles.

    Returns:
        Columns ``feature``, ``importance`` (mean increase, in nats per market) and ``std``,
        most important first.
    """
    columns = list(predictor.meta.feature_columns)
    markets = market_ids_of(holdout)
    won = holdout["won"].to_numpy(dtype=float)
    base = log_loss(predictor.predict_proba(holdout), won, markets)
    rng = np.random.default_rng(seed)
    rows = []
    shuffled = holdout.copy()
    for column in columns:
        original = shuffled[column].to_numpy(copy=True)
        losses = []
        for _ in range(repeats):
            shuffled[column] = original[rng.permutation(len(original))]
            losses.append(log_loss(predictor.predict_proba(shuffled), won, markets) - base)
        shuffled[column] = original
        rows.append((column, float(np.mean(losses)), float(np.std(losses))))
    out = pd.DataFrame(rows, columns=["feature", "importance", "std"])
    return out.sort_values("importance", ascending=False, ignore_index=True)
