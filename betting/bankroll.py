"""Bankroll arithmetic shared by the betting environment and the strategy backtests.

A bet stakes a fraction of the bankroll on one selection at decimal ``odds``; it returns
``stake * (odds - 1)`` when the selection wins and loses the stake otherwise. Every strategy and
the agent settle bets with :func:`settle_bet`, so their numbers are comparable.
"""

from __future__ import annotations

import math

import numpy as np

from betting.errors import InvalidInput
from betting.evaluation import (
    METRIC_BETS,
    METRIC_CLV,
    METRIC_HIT_RATE,
    METRIC_LOG_GROWTH,
    METRIC_MAX_DRAWDOWN,
    METRIC_PROFIT,
    METRIC_ROI,
    METRIC_TURNOVER,
    Values,
)


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


# --- backtest metrics ---------------------------------------------------------------------

#: Standard deviation of the per-bet bankroll returns, over the mean: see :func:`backtest_metrics`.
METRIC_SHARPE = "sharpe"
#: The bankroll at the end, in money (the other money metrics are in starting bankrolls).
METRIC_FINAL_BANKROLL = "final_bankroll"
#: Keys of :func:`backtest_metrics`, in the order tables show them.
BACKTEST_METRICS: tuple[str, ...] = (
    METRIC_BETS,
    METRIC_TURNOVER,
    METRIC_PROFIT,
    METRIC_ROI,
    METRIC_LOG_GROWTH,
    METRIC_MAX_DRAWDOWN,
    METRIC_SHARPE,
    METRIC_CLV,
    METRIC_HIT_RATE,
    METRIC_FINAL_BANKROLL,
)


def _column(values: Values, name: str, n_rows: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be numeric: {e}") from e
    if arr.ndim != 1 or (n_rows is not None and len(arr) != n_rows):
        want = "" if n_rows is None else f" with one value per decision ({n_rows})"
        raise InvalidInput(f"{name} must be 1-D{want}, got shape {arr.shape}")
    return arr


def _refuse(arr: np.ndarray, ok: np.ndarray, name: str, rule: str) -> None:
    if not ok.all():
        row, count = int(np.flatnonzero(~ok)[0]), int((~ok).sum())
        raise InvalidInput(
            f"{name} must be {rule}, got {float(arr[row])!r} at row {row} ({count} bad in all)"
        )


def _decisions(
    fractions: Values, odds: Values, won: Values
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked fractions, odds and outcomes, and each row's :func:`bet_return` (vectorised)."""
    f = _column(fractions, "fractions")
    _refuse(f, (f >= 0.0) & (f <= 1.0), "fractions", "in [0, 1]")
    prices = _column(odds, "odds", len(f))
    _refuse(prices, np.isfinite(prices) & (prices > 1.0), "odds", "finite and above 1")
    y = _column(won, "won", len(f))
    _refuse(y, (y == 0.0) | (y == 1.0), "won", "1 or 0")
    return f, prices, y, np.where(y == 1.0, prices - 1.0, -1.0)


def _check_bankroll(bankroll: float) -> None:
    if not (math.isfinite(bankroll) and bankroll > 0.0):
        raise InvalidInput(f"bankroll must be finite and positive, got {bankroll!r}")


def _log_path(fractions: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """``log(bankroll / starting bankroll)`` before the first decision and after each one.

    Each step is :func:`settle_bet`'s ``bankroll * (1 + fraction * bet_return)``, added in logs
    so that long runs neither overflow nor lose precision; a whole bankroll lost is ``-inf``.
    """
    with np.errstate(divide="ignore"):
        return np.concatenate(([0.0], np.cumsum(np.log1p(fractions * returns))))


def bankroll_path(
    fractions: Values, odds: Values, won: Values, *, bankroll: float = 1.0
) -> np.ndarray:
    """The bankroll before the first decision and after each one (``len(fractions) + 1`` values).

    The same settlement as :func:`settle_bet` applied decision after decision, each staking its
    fraction of the bankroll the earlier ones left. A path that grows past ~1e308 is ``inf``.
    """
    _check_bankroll(bankroll)
    f, _, _, returns = _decisions(fractions, odds, won)
    with np.errstate(over="ignore"):
        return bankroll * np.exp(_log_path(f, returns))


def backtest_metrics(
    fractions: Values,
    odds: Values,
    won: Values,
    closing_odds: Values | None = None,
    *,
    bankroll: float = 1.0,
) -> dict[str, float]:
    """How a sequence of staking decisions did, settled in order by :func:`settle_bet`'s rule.

    Every row is one decision, in time order: stake ``fractions[i]`` of the *current* bankroll
    on a selection priced ``odds[i]`` that won (``won[i] == 1``) or lost. A fraction of 0 is a
    decision not to bet; such rows are not bets and count only through their place in the order.

    Args:
        fractions: stake per decision as a fraction of the current bankroll, in [0, 1].
        odds: the decimal price of each decision's selection.
        won: 1/0 per decision.
        closing_odds: the closing price of each decision's selection, for closing-line value.
        bankroll: the starting bankroll, finite and positive.

    Returns:
        :data:`BACKTEST_METRICS`:

        * ``bets``: decisions with a positive fraction;
        * ``turnover``: the sum of the stakes, in starting bankrolls (2.5 is two and a half
          times the starting bankroll staked in all);
        * ``profit``: final minus starting bankroll, in starting bankrolls;
        * ``roi``: profit / turnover, the return per unit staked;
        * ``log_growth``: ``log(final / starting bankroll)`` (``-inf`` if it is all lost);
        * ``max_drawdown``: the largest fall of the bankroll from its running peak, as a
          fraction of that peak (as :func:`betting.evaluation.max_drawdown`);
        * ``sharpe``: the per-bet Sharpe ratio, unannualised and not scaled by the number of
          bets: with ``r_i = fraction_i * bet_return_i`` the return of bet i on the bankroll,
          ``mean(r) / std(r)`` (sample standard deviation) over the bets;
        * ``clv``: closing-line value, the mean of ``odds / closing_odds - 1`` over the bets;
        * ``hit_rate``: the share of bets that won;
        * ``final_bankroll``: the bankroll at the end, in money.

        Without bets: 0 bets, turnover, profit, log growth and drawdown, the starting bankroll,
        and NaN roi, sharpe, clv and hit rate. Sharpe is also NaN with one bet or returns that
        do not vary; clv is NaN without closing odds.

    Raises:
        InvalidInput: a fraction outside [0, 1], odds not above 1, an outcome not 1/0, columns
            of different lengths or a bankroll that is not positive (each names the bad row).
    """
    _check_bankroll(bankroll)
    f, prices, y, returns = _decisions(fractions, odds, won)
    log_path = _log_path(f, returns)
    bets = f > 0.0
    n_bets = int(bets.sum())
    before = log_path[:-1]  # log of bankroll / starting bankroll before each decision
    # Stakes scaled by the path's peak, so the ROI stays finite however large the path grows.
    weights = np.exp(before - log_path.max()) * f
    per_bet = f[bets] * returns[bets]
    with np.errstate(over="ignore"):
        turnover = float((np.exp(before) * f).sum())
        profit = float(np.expm1(log_path[-1]))
        final = float(bankroll * np.exp(log_path[-1]))
    clv = math.nan
    if closing_odds is not None and n_bets:
        closing = _column(closing_odds, "closing_odds", len(f))[bets]
        _refuse(closing, np.isfinite(closing) & (closing > 1.0), "closing_odds (of bets)",
                "finite and above 1")  # fmt: skip
        clv = float((prices[bets] / closing - 1.0).mean())
    spread = float(per_bet.std(ddof=1)) if n_bets > 1 else 0.0
    out = {
        METRIC_BETS: float(n_bets),
        METRIC_TURNOVER: turnover,
        METRIC_PROFIT: profit,
        METRIC_ROI: float((weights * returns).sum() / weights.sum()) if n_bets else math.nan,
        METRIC_LOG_GROWTH: float(log_path[-1]),
        METRIC_MAX_DRAWDOWN: float(1.0 - np.exp(log_path - np.maximum.accumulate(log_path)).min()),
        METRIC_SHARPE: float(per_bet.mean() / spread) if spread > 0.0 else math.nan,
        METRIC_CLV: clv,
        METRIC_HIT_RATE: float(y[bets].mean()) if n_bets else math.nan,
        METRIC_FINAL_BANKROLL: final,
    }
    return {name: out[name] for name in BACKTEST_METRICS}
