"""Padding markets of varying size for the Keras classifier, and its preprocessing (no
TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from betting.errors import InvalidInput
from classifiers.model import Preprocessing, market_layout, pad_markets, scatter_rows


def races(sizes: list[int], *, seed: int = 0) -> pd.DataFrame:
    """Markets of the given sizes, rows shuffled so a market's rows are not contiguous."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, size in enumerate(sizes):
        winner = rng.integers(size)
        for j in range(size):
            rows.append({"event_key": f"race-{i}", "market_key": "win", "f": float(10 * i + j),
                         "won": float(j == winner)})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_markets_of_6_to_14_runners_pad_and_scatter_back() -> None:
    table = races([6, 14, 9, 11])
    x, mask, y, row_index = pad_markets(table, ["f"])
    assert x.shape == (4, 14, 1) and mask.shape == y.shape == row_index.shape == (4, 14)
    assert sorted(mask.sum(axis=1).astype(int).tolist()) == [6, 9, 11, 14]
    assert (x[mask == 0] == 0).all() and (row_index[mask == 0] == -1).all()
    assert np.allclose(y.sum(axis=1), 1.0)
    # Every row lands in one slot and comes back to its own place.
    assert np.array_equal(scatter_rows(x[..., 0], row_index), table["f"].to_numpy(np.float32))
    layout = market_layout(table)
    assert np.array_equal(layout.scatter(layout.pad(table["f"].to_numpy())), table["f"])


def test_a_market_wider_than_the_model_is_refused_by_name() -> None:
    table = races([6, 15])
    with pytest.raises(InvalidInput, match=r"race-1.*15 selections.*14"):
        market_layout(table, max_selections=14)
    with pytest.raises(InvalidInput, match="market key"):
        market_layout(table.drop(columns="market_key"))


def test_preprocessing_imputes_scales_clips_and_round_trips() -> None:
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "b": [5.0, 5.0, 5.0, 5.0]})
    prep = Preprocessing.fit(train, ["a", "b"])
    out = prep.transform(pd.DataFrame({"a": [np.nan, np.inf, 1e9], "b": [5.0, 7.0, 5.0]}))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out[0, 0] == pytest.approx(0.0, abs=1e-6)  # median 2 == mean after imputation
    assert out[2, 0] == 10.0  # clipped
    assert out[1, 1] == pytest.approx(2.0)  # constant column: std falls back to 1
    again = Preprocessing.from_dict(prep.to_dict())
    assert np.array_equal(again.transform(train), prep.transform(train))
    with pytest.raises(InvalidInput, match="numeric"):
        prep.transform(pd.DataFrame({"a": ["x"], "b": [1.0]}))
    with pytest.raises(InvalidInput, match="one median"):
        Preprocessing.from_dict({**prep.to_dict(), "stds": [1.0]})
