"""Bankroll arithmetic shared by the betting environment and the strategy backtests.

A bet stakes a fraction of the bankroll on one selection at decimal ``odds``; it returns
``stake * (odds - 1)`` when the selection wins and loses the stake otherwise. Every strategy and
the agent settle bets with :func:`settle_bet`, so their numbers are comparable.
"""

from __future__ import annotations

import math

import numpy as np

from betting.errors import InvalidInput
from betting.evaluation import Values


def bet_return(odds: float, won: bool) -> float:
    """Profit per unit staked: ``odds - 1`` on a win, ``-1`` on a loss."""
    return odds - 1.0 if won else -1.0


def settle_bet(bankroll: float, fraction: float, odds: float, won: bool) -> float:
    """The bankroll after staking ``fraction`` of ``bankroll`` at ``odds``.

    Raises:
        InvalidInput: a fraction outside [0, 1], odds not above 1, or a negative bankroll.
    """
    if not 0.0 <= fraction <= 1.0:
        raise InvalidInput(f"stake fraction must be in [0, 1], got {fraction!r}")
    if not (math.isfinite(odds) and odds > 1.0):
        raise InvalidInput(f"odds must be finite and above 1, got {odds!r}")
    if not bankroll >= 0.0:
        raise InvalidInput(f"bankroll must be non-negative, got {bankroll!r}")
    return bankroll * (1.0 + fraction * bet_return(odds, won))


def best_edge_rows(probabilities: Values, odds: Values, market_ids: Values) -> np.ndarray:
    """Per market (in order of first appearance), the row of the selection with the highest
    edge ``p * odds - 1`` (the first such row on ties)."""
    p = np.asarray(probabilities, dtype=float)
    o = np.asarray(odds, dtype=float)
    ids = np.asarray(market_ids)
    if not len(p) == len(o) == len(ids):
        raise InvalidInput("probabilities, odds and market_ids need one value per row")
    codes = np.unique(ids, return_inverse=True)[1] if len(ids) else np.zeros(0, dtype=np.int64)
    first_seen = np.full(codes.max(initial=-1) + 1, len(ids))
    np.minimum.at(first_seen, codes, np.arange(len(ids)))
    edges = np.nan_to_num(p * o - 1.0, nan=-np.inf)
    order = np.lexsort((np.arange(len(ids)), -edges, first_seen[codes]))
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = codes[order][1:] != codes[order][:-1]
    return order[keep]
