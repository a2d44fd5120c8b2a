"""The Keras network over padded markets, its input preprocessing, and the padding itself.

A table of selections (one row each, any order) becomes arrays over markets:

* ``x``: ``[markets, max_selections, n_features]`` float32, the selection rows of each market in
  table order, zeros in the padding slots;
* ``mask``: ``[markets, max_selections]``, 1.0 for a real selection and 0.0 for padding;
* ``y``: ``[markets, max_selections]``, 1.0 on the winner;
* ``row_index``: ``[markets, max_selections]``, the table position of each slot, -1 for padding.

* ``prior``: ``[markets, max_selections]``, the market's log implied probability of each
  selection (:func:`market_prior`), 0 in padding.

The network applies one MLP to every selection (the same weights for all, so the order of the
selections does not matter) and gives each the logit ``w * prior + mlp(x)``, then takes the
softmax over the market's real selections: a padding slot's logit is pushed to -1e9, so it gets
probability 0 and never changes the others'. ``w`` starts at 1 and the MLP's output layer at 0,
so an untrained network reproduces the market's margin-free probabilities and training learns
where the market is wrong, which on a few seasons of data is far easier than learning the whole
price from scratch. TensorFlow is imported only when a network is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.evaluation import MARKET_KEY_COLUMNS
from classifiers.config import ClassifierParams

if TYPE_CHECKING:
    import keras

#: Added to a padding slot's logit (after scaling the mask), so its softmax weight is exactly 0.
MASK_PENALTY = 1e9
#: Standardised features are clipped to +/- this, so one wild input cannot swamp a prediction.
FEATURE_CLIP = 10.0
INPUT_FEATURES = "features"
INPUT_MASK = "mask"
INPUT_PRIOR = "prior"
#: Where the market prior comes from, first available per row: closing, then opening implied
#: probability (with margin: the softmax over the market removes it proportionally).
PRIOR_COLUMNS = ("close_implied", "open_implied")
#: Implied probabilities are clipped here before the log.
PRIOR_FLOOR = 1e-4


# --- padding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketLayout:
    """Where each row of a table sits in the padded ``[markets, max_selections]`` arrays."""

    market: np.ndarray
    """Per row, its market's number (0.. in order of first appearance)."""
    slot: np.ndarray
    """Per row, its place within the market (table order)."""
    n_markets: int
    max_selections: int

    @property
    def n_rows(self) -> int:
        return len(self.market)

    def mask(self) -> np.ndarray:
        """1.0 where a slot holds a selection, 0.0 for padding."""
        out = np.zeros((self.n_markets, self.max_selections), dtype=np.float32)
        out[self.market, self.slot] = 1.0
        return out

    def row_index(self) -> np.ndarray:
        """The table position of each slot, -1 for padding."""
        out = np.full((self.n_markets, self.max_selections), -1, dtype=np.int64)
        out[self.market, self.slot] = np.arange(self.n_rows)
        return out

    def pad(self, values: np.ndarray) -> np.ndarray:
        """Per-row values (``[rows]`` or ``[rows, k]``) spread over the slots, zeros in padding."""
        values = np.asarray(values, dtype=np.float32)
        out = np.zeros((self.n_markets, self.max_selections, *values.shape[1:]), np.float32)
        out[self.market, self.slot] = values
        return out

    def scatter(self, padded: np.ndarray) -> np.ndarray:
        """Per-slot values (``[markets, max_selections]``) back to one value per table row."""
        return np.asarray(padded)[self.market, self.slot]


def market_layout(table: pd.DataFrame, max_selections: int | None = None) -> MarketLayout:
    """The layout of ``table``'s rows grouped by (event_key, market_key).

    Args:
        table: rows with ``event_key`` and ``market_key``.
        max_selections: width of the padded arrays; default the largest market of ``table``.

    Raises:
        InvalidInput: a market has more selections than ``max_selections`` (it is named), or a
            key column is missing.
    """
    missing = [c for c in MARKET_KEY_COLUMNS if c not in table.columns]
    if missing:
        raise InvalidInput(f"table lacks market key column(s) {missing}")
    grouped = table.groupby(list(MARKET_KEY_COLUMNS), sort=False, dropna=False)
    market = grouped.ngroup().to_numpy(dtype=np.int64)
    slot = grouped.cumcount().to_numpy(dtype=np.int64)
    sizes = np.bincount(market) if len(market) else np.zeros(0, dtype=np.int64)
    largest = int(sizes.max()) if len(sizes) else 0
    width = largest if max_selections is None else int(max_selections)
    if largest > width:
        row = int(np.flatnonzero(slot >= width)[0])
        key = tuple(table[c].iloc[row] for c in MARKET_KEY_COLUMNS)
        raise InvalidInput(
            f"market {key!r} has {int(sizes[market[row]])} selections, more than the "
            f"{width} this model was trained for"
        )
    return MarketLayout(market=market, slot=slot, n_markets=len(sizes), max_selections=width)


def pad_markets(
    table: pd.DataFrame, feature_columns: Sequence[str], max_selections: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, mask, y, row_index)`` of ``table`` as described in the module docstring.

    ``x`` holds the columns as they are (NaN included; preprocess first, see
    :class:`Preprocessing`). ``y`` is zero where ``won`` is missing or NaN.
    """
    layout = market_layout(table, max_selections)
    x = layout.pad(table[list(feature_columns)].to_numpy(dtype=np.float32))
    won = table["won"] if "won" in table.columns else pd.Series(0.0, index=table.index)
    y = layout.pad(np.nan_to_num(won.to_numpy(dtype=np.float64), nan=0.0))
    return x, layout.mask(), y, layout.row_index()


def scatter_rows(padded: np.ndarray, row_index: np.ndarray) -> np.ndarray:
    """Per-slot values back to one value per table row (the inverse of :func:`pad_markets`)."""
    real = row_index >= 0
    out = np.empty(int(real.sum()), dtype=np.asarray(padded).dtype)
    out[row_index[real]] = np.asarray(padded)[real]
    return out


def market_prior(table: pd.DataFrame) -> np.ndarray:
    """Per row, the log of the first of :data:`PRIOR_COLUMNS` that is known; 0 where none is
    (the selection then competes on its features alone)."""
    prior = pd.Series(np.nan, index=table.index, dtype=float)
    for column in PRIOR_COLUMNS:
        if column in table.columns:
            prior = prior.fillna(pd.to_numeric(table[column], errors="coerce").astype(float))
    values = prior.to_numpy(dtype=float)
    known = np.isfinite(values) & (values > 0)
    out = np.zeros(len(values))
    out[known] = np.log(np.clip(values[known], PRIOR_FLOOR, 1.0))
    return out


# --- preprocessing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessing:
    """Median imputation then standardisation, fitted on training rows, stored as JSON."""

    feature_columns: list[str]
    medians: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    @classmethod
    def fit(cls, table: pd.DataFrame, feature_columns: Sequence[str]) -> Preprocessing:
        """Fit on ``table``; non-finite values count as missing, an all-missing column gets 0."""
        columns = list(feature_columns)
        raw = _finite_or_nan(table, columns)
        with np.errstate(all="ignore"):
            medians = np.nan_to_num(np.nanmedian(raw, axis=0), nan=0.0) if len(raw) else None
        if medians is None:
            raise InvalidInput("cannot fit preprocessing on an empty table")
        filled = np.where(np.isnan(raw), medians, raw)
        stds = filled.std(axis=0)
        stds = np.where(np.isfinite(stds) & (stds > 1e-12), stds, 1.0)
        return cls(columns, medians, filled.mean(axis=0), stds)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``[rows, n_features]`` float32: imputed, standardised and clipped."""
        raw = _finite_or_nan(frame, self.feature_columns)
        filled = np.where(np.isnan(raw), self.medians, raw)
        scaled = np.clip((filled - self.means) / self.stds, -FEATURE_CLIP, FEATURE_CLIP)
        return scaled.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_columns": list(self.feature_columns),
            "medians": self.medians.tolist(),
            "means": self.means.tolist(),
            "stds": self.stds.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        try:
            columns = [str(c) for c in data["feature_columns"]]
            arrays = [np.asarray(data[k], dtype=float) for k in ("medians", "means", "stds")]
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"preprocessing description is invalid: {e!r}") from e
        if any(a.shape != (len(columns),) for a in arrays):
            raise InvalidInput(f"preprocessing needs one median, mean and std per column {columns}")
        return cls(columns, *arrays)


def _finite_or_nan(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    try:
        raw = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"feature columns must be numeric: {e}") from e
    return np.where(np.isfinite(raw), raw, np.nan)


# --- network ------------------------------------------------------------------------------


def build_network(n_features: int, params: ClassifierParams) -> keras.Model:
    """A compiled model: inputs ``features`` ``[m, s, n_features]``, ``mask`` ``[m, s]`` and
    ``prior`` ``[m, s]``, output the softmax within each market ``[m, s]``, loss categorical
    cross-entropy.

    Only built-in layers are used, so ``model.keras`` loads with Keras' safe mode on.
    """
    import keras

    regulariser = keras.regularizers.L2(params.l2) if params.l2 > 0 else None
    features = keras.Input(shape=(None, n_features), name=INPUT_FEATURES)
    mask = keras.Input(shape=(None,), name=INPUT_MASK)
    prior = keras.Input(shape=(None,), name=INPUT_PRIOR)
    x = features
    for i in range(params.hidden_layers):
        x = keras.layers.Dense(
            params.width, activation="relu", kernel_regularizer=regulariser, name=f"hidden_{i}"
        )(x)
        if params.dropout > 0:
            x = keras.layers.Dropout(params.dropout, name=f"dropout_{i}")(x)
    logit = keras.layers.Dense(
        1, kernel_regularizer=regulariser, kernel_initializer="zeros", name="logit"
    )(x)
    prior_column = keras.layers.Reshape((-1, 1), name="prior_column")(prior)
    weighted = keras.layers.Dense(
        1, use_bias=False, kernel_initializer="ones", name="prior_weight"
    )(prior_column)
    summed = keras.layers.Add(name="logit_sum")([logit, weighted])
    logits = keras.layers.Reshape((-1,), name="logits")(summed)
    # mask 1 -> 0, mask 0 -> -MASK_PENALTY (both exact in float32).
    penalty = keras.layers.Rescaling(MASK_PENALTY, offset=-MASK_PENALTY, name="penalty")(mask)
    masked = keras.layers.Add(name="masked_logits")([logits, penalty])
    probabilities = keras.layers.Softmax(axis=-1, name="probabilities")(masked)
    model = keras.Model([features, mask, prior], probabilities, name="market_softmax")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
    )
    return model


def predict_padded(
    model: keras.Model, x: np.ndarray, mask: np.ndarray, prior: np.ndarray, *, chunk: int = 8192
) -> np.ndarray:
    """The model's ``[markets, max_selections]`` probabilities, in chunks of markets.

    Calls the model directly (no ``predict`` loop), which is fastest for the small requests of
    online serving and bounded in memory for batch scoring.
    """
    parts = [
        np.asarray(
            model([x[i : i + chunk], mask[i : i + chunk], prior[i : i + chunk]], training=False)
        )
        for i in range(0, len(x), chunk)
    ]
    if not parts:
        return np.zeros(mask.shape, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32) * mask
