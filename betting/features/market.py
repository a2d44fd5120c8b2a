"""Odds features of each selection, from the odds aggregates of the selection frame.

The opening price is ``open_mean`` (falling back to ``pre_close_mean``), the closing price
``close_mean`` (falling back to the opening price). Implied probabilities have the margin removed
proportionally within each market: ``(1 / price) / sum(1 / price)``. A market in which any
selection lacks a price gets NaN implied probabilities and overround, since its margin cannot be
known; a selection without any price gets NaN odds features. Trainers impute them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.odds import remove_margin_grouped


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(float)


def margin_free(price: np.ndarray, market: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proportionally margin-free implied probabilities and the market's overround.

    Args:
        price: decimal prices, NaN where missing.
        market: a dense integer id of each row's (event, market).

    Returns:
        ``(implied, overround)`` per row, overround being ``sum(1 / price) - 1`` of the market;
        both NaN in markets with a missing price.
    """
    n_markets = int(market.max()) + 1 if len(market) else 0
    missing = np.isnan(price)
    incomplete = np.bincount(market, weights=missing, minlength=n_markets) > 0
    complete = ~incomplete[market]
    implied = np.full(len(price), np.nan)
    overround = np.full(len(price), np.nan)
    if complete.any():
        implied[complete] = remove_margin_grouped(price[complete], market[complete])
        books = np.bincount(market[complete], weights=1.0 / price[complete], minlength=n_markets)
        overround[complete] = books[market[complete]] - 1.0
    return implied, overround


def odds_features(frame: pd.DataFrame, market: np.ndarray) -> dict[str, np.ndarray]:
    """The odds features of every row of ``frame`` (see the module docstring)."""
    open_price = _column(frame, "open_mean")
    open_price = np.where(np.isnan(open_price), _column(frame, "pre_close_mean"), open_price)
    close_price = _column(frame, "close_mean")
    close_price = np.where(np.isnan(close_price), open_price, close_price)
    open_implied, open_overround = margin_free(open_price, market)
    close_implied, close_overround = margin_free(close_price, market)
    return {
        "open_implied": open_implied,
        "close_implied": close_implied,
        "implied_move": close_implied - open_implied,
        "log_odds_move": np.log(close_price) - np.log(open_price),
        "close_implied_std": _column(frame, "close_implied_std"),
        "open_overround": open_overround,
        "close_overround": close_overround,
    }
