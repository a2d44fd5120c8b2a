"""The evaluation every betml outcome model shares: probability scores and the betting view.

Keras classifiers, tree ensembles and the DQN's input probabilities are all judged here, on the
same rows and with the same rules, so their numbers can be put side by side.

Inputs are per-selection rows:
    * ``market_ids``: any hashable per row; the rows of one market share it (for a selection
      frame, :func:`market_ids_of` builds them from event_key + market_key). Rows of a market
      need not be contiguous.
    * ``positions``: the order of the outcomes within their market (home/draw/away), for RPS.
    * ``probabilities``: the model's, in [0, 1] and summing to 1 per market (within
      :data:`PROBABILITY_SUM_TOLERANCE`); :func:`normalise_within_markets` makes raw scores so.
    * ``won``: 1/0 with exactly one winner per market.
    * ``odds``, ``closing_odds``: decimal prices one could bet at, and the closing prices.

Bad input raises :class:`betting.errors.InvalidInput` naming the bad value or market.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.odds import (
    EDGE_TOLERANCE,
    MarginMethod,
    expected_value,
    fractional_kelly,
    remove_margin_grouped,
)

logger = logging.getLogger(__name__)

Values: TypeAlias = Sequence[Any] | np.ndarray | pd.Series | pd.Index
Staking: TypeAlias = Literal["flat", "kelly"]
STAKINGS: tuple[str, ...] = ("flat", "kelly")

METRIC_LOG_LOSS = "log_loss"
METRIC_BRIER = "brier"
METRIC_RPS = "rps"
METRIC_ECE = "ece"
METRIC_AUC = "auc"
SCORE_METRICS: tuple[str, ...] = (METRIC_LOG_LOSS, METRIC_BRIER, METRIC_RPS, METRIC_ECE, METRIC_AUC)

METRIC_BETS = "bets"
METRIC_TURNOVER = "turnover"
METRIC_PROFIT = "profit"
METRIC_ROI = "roi"
METRIC_CLV = "clv"
METRIC_LOG_GROWTH = "log_growth"
METRIC_MAX_DRAWDOWN = "max_drawdown"
METRIC_HIT_RATE = "hit_rate"
BETTING_METRICS: tuple[str, ...] = (
    METRIC_BETS,
    METRIC_TURNOVER,
    METRIC_PROFIT,
    METRIC_ROI,
    METRIC_CLV,
    METRIC_LOG_GROWTH,
    METRIC_MAX_DRAWDOWN,
    METRIC_HIT_RATE,
)
#: Columns of :func:`holdout_report`, in order.
REPORT_COLUMNS: tuple[str, ...] = (
    *SCORE_METRICS,
    METRIC_BETS,
    METRIC_ROI,
    METRIC_CLV,
    METRIC_LOG_GROWTH,
    METRIC_MAX_DRAWDOWN,
)
#: Rows of :func:`holdout_report`: the model, the market's margin-free closing probabilities,
#: the true probabilities (the floor, simulated data only) and the base rate per position.
ROW_MODEL = "model"
ROW_MARKET = "market_close"
ROW_TRUTH = "truth"
ROW_BASE_RATE = "base_rate"

#: Probabilities are clipped here before the log, so a confident miss costs ~34.5, not infinity.
PROBABILITY_FLOOR = 1e-15
#: How far a market's probabilities may sum from 1 (float32 softmax outputs pass).
PROBABILITY_SUM_TOLERANCE = 1e-6
ECE_BINS = 10
#: Flat staking stakes this share of the starting bankroll on every bet.
FLAT_STAKE_FRACTION = 0.01
MARKET_KEY_COLUMNS: tuple[str, ...] = ("event_key", "market_key")


# --- validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Markets:
    """Rows numbered by market: ``codes[i]`` is row i's market, 0..count-1 in first-seen order."""

    codes: np.ndarray
    keys: Any

    @property
    def count(self) -> int:
        return len(self.keys)

    def sums(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes, weights=values, minlength=self.count)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.count)

    def name(self, code: int) -> str:
        return repr(self.keys[code])


def _markets(market_ids: Values, n_rows: int) -> _Markets:
    if not isinstance(market_ids, pd.Series | pd.Index | np.ndarray):
        market_ids = pd.Series(list(market_ids), dtype=object)
    if np.ndim(market_ids) != 1 or len(market_ids) != n_rows:
        raise InvalidInput(
            f"market_ids must be 1-D with one id per row ({n_rows}), got shape "
            f"{np.shape(market_ids)}"
        )
    codes, keys = pd.factorize(market_ids)
    if (codes < 0).any():
        raise InvalidInput(f"market_ids must not be missing, got one at row {np.argmin(codes)}")
    return _Markets(codes=codes, keys=keys)


def _floats(values: Any, name: str, n_rows: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be numeric: {e}") from e
    if arr.ndim != 1 or (n_rows is not None and len(arr) != n_rows):
        want = "" if n_rows is None else f" of length {n_rows}"
        raise InvalidInput(f"{name} must be 1-D{want}, got shape {arr.shape}")
    return arr


def _refuse(arr: np.ndarray, bad: np.ndarray, name: str, rule: str) -> None:
    if bad.any():
        row, count = int(np.flatnonzero(bad)[0]), int(bad.sum())
        raise InvalidInput(
            f"{name} must be {rule}, got {float(arr[row])!r} at row {row} ({count} bad in all)"
        )


def _binary(won: Any, n_rows: int) -> np.ndarray:
    y = _floats(won, "won", n_rows)
    _refuse(y, (y != 0.0) & (y != 1.0), "won", "1 or 0")
    return y


def _prices(odds: Any, name: str, n_rows: int) -> np.ndarray:
    arr = _floats(odds, name, n_rows)
    _refuse(arr, ~(np.isfinite(arr) & (arr > 1.0)), name, "finite decimal prices above 1.0")
    return arr


def _checked(
    probabilities: Any, won: Any, market_ids: Values
) -> tuple[np.ndarray, np.ndarray, _Markets]:
    """Probabilities, outcomes and markets after checking every rule of the module docstring."""
    p = _floats(probabilities, "probabilities")
    _refuse(p, ~((p >= 0.0) & (p <= 1.0)), "probabilities", "in [0, 1]")
    y = _binary(won, len(p))
    markets = _markets(market_ids, len(p))
    off = np.abs(markets.sums(p) - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        code = int(np.flatnonzero(off)[0])
        raise InvalidInput(
            f"probabilities must sum to 1 within each market, market {markets.name(code)} sums "
            f"to {float(markets.sums(p)[code])!r} ({int(off.sum())} such markets; see "
            "normalise_within_markets)"
        )
    winners = markets.sums(y)
    if (winners != 1.0).any():
        code = int(np.flatnonzero(winners != 1.0)[0])
        raise InvalidInput(
            f"each market needs exactly one winner, market {markets.name(code)} has "
            f"{int(winners[code])}"
        )
    return p, y, markets


def _ordinal(values: Values, name: str, n_rows: int) -> np.ndarray:
    """Integer codes that sort like ``values`` (numbers, strings or timestamps)."""
    try:
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        codes, _ = pd.factorize(series, sort=True)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be 1-D and mutually comparable, got {e}") from e
    if len(codes) != n_rows:
        raise InvalidInput(f"{name} must have one value per row ({n_rows}), got {len(codes)}")
    if (codes < 0).any():
        raise InvalidInput(f"{name} must not be missing, got one at row {np.argmin(codes)}")
    return codes


# --- market probabilities -----------------------------------------------------------------


def market_ids_of(frame: pd.DataFrame, columns: Sequence[str] = MARKET_KEY_COLUMNS) -> np.ndarray:
    """One integer id per row of ``frame``, shared by the rows of a market (keyed by columns)."""
    return frame.groupby(list(columns), sort=False, dropna=False).ngroup().to_numpy()


def normalise_within_markets(values: Values, market_ids: Values) -> np.ndarray:
    """Scale non-negative scores so each market sums to 1; a market of all zeros gets uniform."""
    v = _floats(values, "values")
    _refuse(v, ~(np.isfinite(v) & (v >= 0.0)), "values", "finite and >= 0")
    markets = _markets(market_ids, len(v))
    totals = markets.sums(v)[markets.codes]
    uniform = 1.0 / markets.sizes()[markets.codes]
    return np.where(totals > 0.0, v / np.where(totals > 0.0, totals, 1.0), uniform)


def market_probabilities_from_odds(
    odds: Values, market_ids: Values, method: MarginMethod = "proportional"
) -> np.ndarray:
    """The market's margin-free probabilities, per row, by ``"proportional"`` or ``"shin"``."""
    prices = _floats(odds, "odds")
    markets = _markets(market_ids, len(prices))
    return np.asarray(remove_margin_grouped(prices, markets.codes, method), dtype=float)


# --- probability scores -------------------------------------------------------------------


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    # One winner per market, so the winners' rows are one per market.
    return float(-np.log(np.clip(p[y == 1.0], PROBABILITY_FLOOR, 1.0)).mean())


def _brier(p: np.ndarray, y: np.ndarray, markets: _Markets) -> float:
    return float(np.square(p - y).sum() / markets.count)


def _rps(p: np.ndarray, y: np.ndarray, markets: _Markets, positions: Values) -> float:
    place = _ordinal(positions, "positions", len(p))
    sizes = markets.sizes()
    if (sizes < 2).any():
        code = int(np.flatnonzero(sizes < 2)[0])
        raise InvalidInput(f"RPS needs 2+ selections per market, {markets.name(code)} has 1")
    order = np.lexsort((place, markets.codes))
    codes, place = markets.codes[order], place[order]
    if ((codes[1:] == codes[:-1]) & (place[1:] == place[:-1])).any():
        raise InvalidInput("positions must be distinct within each market")
    # Rows now run market by market, in position order: cumulate (p - y), restarting per market.
    running = np.cumsum(p[order] - y[order])
    ends = np.cumsum(sizes)
    before = np.concatenate(([0.0], running))[ends - sizes]
    cumulative = running - before[codes]
    not_last = np.ones(len(codes), dtype=bool)
    not_last[ends - 1] = False
    squares = np.where(not_last, np.square(cumulative), 0.0)
    per_market = np.bincount(codes, weights=squares, minlength=markets.count)
    return float((per_market / (sizes - 1)).mean())


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=p, minlength=n_bins) - np.bincount(
        bins, weights=y, minlength=n_bins
    )
    # sum over bins of count/N * |mean p - mean y| = sum |sum p - sum y| / N.
    return float(np.abs(gap).sum() / max(count.sum(), 1))


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    positives = int((y == 1.0).sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    starts = np.concatenate(([True], ranked[1:] != ranked[:-1]))  # first row of each tie group
    first = np.flatnonzero(starts)
    mean_rank = first + (np.diff(np.append(first, len(p))) + 1) / 2.0  # ties share their mean
    rank_sum = mean_rank[np.cumsum(starts) - 1][y[order] == 1.0].sum()
    u = rank_sum - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def log_loss(probabilities: Values, won: Values, market_ids: Values) -> float:
    """Mean over markets of ``-log p(winner)``, p clipped at :data:`PROBABILITY_FLOOR`."""
    p, y, _ = _checked(probabilities, won, market_ids)
    return _log_loss(p, y)


def brier(probabilities: Values, won: Values, market_ids: Values) -> float:
    """Multi-class Brier score: mean over markets of ``sum over selections (p - y)^2``."""
    p, y, markets = _checked(probabilities, won, market_ids)
    return _brier(p, y, markets)


def rps(probabilities: Values, won: Values, market_ids: Values, positions: Values) -> float:
    """Ranked probability score for ordered outcomes (home < draw < away, under < over).

    Per market with K selections ordered by ``positions``:
    ``sum over k < K of (cumulative p_k - cumulative y_k)^2 / (K - 1)``; averaged over markets.
    """
    p, y, markets = _checked(probabilities, won, market_ids)
    return _rps(p, y, markets, positions)


def ece(probabilities: Values, won: Values, *, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over all selection rows.

    Rows fall in ``n_bins`` equal-width bins of probability; the result is the mean over bins of
    ``|mean probability - win rate|`` weighted by the share of rows in the bin.
    """
    p = _floats(probabilities, "probabilities")
    _refuse(p, ~((p >= 0.0) & (p <= 1.0)), "probabilities", "in [0, 1]")
    if n_bins < 1:
        raise InvalidInput(f"n_bins must be at least 1, got {n_bins!r}")
    return _ece(p, _binary(won, len(p)), n_bins)


def auc(probabilities: Values, won: Values) -> float:
    """ROC AUC of selection probabilities against wins (Mann-Whitney U, ties count half).

    NaN when there are no winners or no losers.
    """
    p = _floats(probabilities, "probabilities")
    _refuse(p, np.isnan(p), "probabilities", "not NaN")
    return _auc(p, _binary(won, len(p)))


def score_probabilities(
    probabilities: Values,
    won: Values,
    market_ids: Values,
    positions: Values | None = None,
) -> dict[str, float]:
    """Every score of :data:`SCORE_METRICS`; RPS is NaN when ``positions`` is None."""
    p, y, markets = _checked(probabilities, won, market_ids)
    return {
        METRIC_LOG_LOSS: _log_loss(p, y),
        METRIC_BRIER: _brier(p, y, markets),
        METRIC_RPS: math.nan if positions is None else _rps(p, y, markets, positions),
        METRIC_ECE: _ece(p, y, ECE_BINS),
        METRIC_AUC: _auc(p, y),
    }


# --- betting view -------------------------------------------------------------------------


def value_bets(probabilities: Values, odds: Values, *, min_edge: float = 0.02) -> np.ndarray:
    """Mask of the selections whose edge (``p * odds - 1``) reaches ``min_edge``.

    Edges within :data:`betting.odds.EDGE_TOLERANCE` below ``min_edge`` count as reaching it,
    as in :func:`betting.odds.recommend`.
    """
    edges = np.asarray(expected_value(probabilities, odds), dtype=float)
    return edges >= min_edge - EDGE_TOLERANCE


def max_drawdown(bankroll_path: Values) -> float:
    """Largest fall of a bankroll from its running peak, as a fraction of that peak.

    ``bankroll_path`` starts with the initial bankroll, which must be positive.
    """
    path = _floats(bankroll_path, "bankroll_path")
    if len(path) == 0 or not path[0] > 0.0:
        raise InvalidInput(f"bankroll_path must start with a positive bankroll, got {path[:1]!r}")
    _refuse(path, np.isnan(path), "bankroll_path", "not NaN")
    peaks = np.maximum.accumulate(path)
    return float(np.max((peaks - path) / peaks))


def _settle_flat(returns: np.ndarray, bankroll: float) -> dict[str, float]:
    """Money metrics of staking :data:`FLAT_STAKE_FRACTION` of the starting bankroll per bet."""
    stake = FLAT_STAKE_FRACTION * bankroll
    path = np.concatenate(([bankroll], bankroll + np.cumsum(stake * returns)))
    final = float(path[-1])
    return {
        METRIC_TURNOVER: stake * len(returns),
        METRIC_PROFIT: final - bankroll,
        METRIC_ROI: float(returns.mean()) if len(returns) else math.nan,
        METRIC_LOG_GROWTH: math.log(final / bankroll) if final > 0.0 else -math.inf,
        METRIC_MAX_DRAWDOWN: max_drawdown(path),
    }


def _settle_kelly(returns: np.ndarray, fractions: np.ndarray, bankroll: float) -> dict[str, float]:
    """Money metrics of staking ``fractions`` of the current bankroll, bet after bet.

    The path is kept in logs so that a long winning run cannot overflow the ROI, log growth or
    drawdown; only turnover and profit, in money, may overflow to inf.
    """
    with np.errstate(divide="ignore"):  # a whole bankroll lost is log 0 = -inf
        log_path = np.concatenate(([0.0], np.cumsum(np.log1p(fractions * returns))))
    before = log_path[:-1]  # log of bankroll / starting bankroll before each bet
    weights = np.exp(before - log_path.max()) * fractions  # the stakes, up to a common factor
    with np.errstate(over="ignore"):
        turnover = float(bankroll * (np.exp(before) * fractions).sum())
        profit = float(bankroll * np.expm1(log_path[-1]))
    return {
        METRIC_TURNOVER: turnover,
        METRIC_PROFIT: profit,
        METRIC_ROI: float((weights * returns).sum() / weights.sum()) if len(returns) else math.nan,
        METRIC_LOG_GROWTH: float(log_path[-1]),
        METRIC_MAX_DRAWDOWN: float(1.0 - np.exp(log_path - np.maximum.accumulate(log_path)).min()),
    }


def _best_value_bet_rows(edges: np.ndarray, markets: _Markets, min_edge: float) -> np.ndarray:
    """Rows of the best-edge value selection of each market (first row on ties), ascending."""
    rows = np.flatnonzero(edges >= min_edge - EDGE_TOLERANCE)
    ranked = rows[np.lexsort((rows, -edges[rows], markets.codes[rows]))]
    codes = markets.codes[ranked]
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    return np.sort(ranked[first])


def betting_metrics(
    probabilities: Values,
    odds: Values,
    won: Values,
    market_ids: Values,
    starts_at: Values,
    *,
    min_edge: float = 0.02,
    staking: Staking = "flat",
    kelly_multiplier: float = 0.25,
    closing_odds: Values | None = None,
    bankroll: float = 1.0,
) -> dict[str, float]:
    """The betting view of a model's probabilities: value bets placed and settled in time order.

    In each market at most one bet is placed, on the value selection (see :func:`value_bets`)
    with the best edge. Bets are settled in ``starts_at`` order (row order on ties), each staked
    from the bankroll left by the previous ones.

    Args:
        probabilities: the model's probability per selection.
        odds: the decimal price each selection could be bet at.
        won: 1/0 per selection.
        market_ids: the market of each row.
        starts_at: when each row's event starts (timestamps or anything orderable).
        min_edge: lowest edge (EV per unit stake) of a bet.
        staking: ``"flat"`` stakes :data:`FLAT_STAKE_FRACTION` of the starting bankroll per bet;
            ``"kelly"`` stakes ``kelly_multiplier`` of full Kelly of the current bankroll (a
            selection whose Kelly stake is 0 is not a bet).
        kelly_multiplier: share of full Kelly, in [0, 1].
        closing_odds: closing price per selection, for closing-line value.
        bankroll: starting bankroll, positive.

    Returns:
        :data:`BETTING_METRICS`: bets (count), turnover, profit, roi (profit / turnover), clv
        (mean of odds / closing odds - 1 over bets; NaN without closing odds), log_growth
        (log of final / starting bankroll; -inf if it is all lost), max_drawdown (of the
        bankroll path, a fraction), hit_rate. With no bets: 0 bets, turnover, profit,
        log_growth and drawdown, and NaN roi, clv and hit rate.
    """
    if staking not in STAKINGS:
        raise InvalidInput(f"staking must be one of {STAKINGS}, got {staking!r}")
    if not (math.isfinite(bankroll) and bankroll > 0.0):
        raise InvalidInput(f"bankroll must be finite and positive, got {bankroll!r}")
    p = _floats(probabilities, "probabilities")
    n_rows = len(p)
    prices = _prices(odds, "odds", n_rows)
    y = _binary(won, n_rows)
    markets = _markets(market_ids, n_rows)
    when = _ordinal(starts_at, "starts_at", n_rows)
    closing = None if closing_odds is None else _prices(closing_odds, "closing_odds", n_rows)

    rows = _best_value_bet_rows(np.asarray(expected_value(p, prices)), markets, min_edge)
    rows = rows[np.argsort(when[rows], kind="stable")]
    if staking == "kelly":
        fractions = np.asarray(fractional_kelly(p[rows], prices[rows], kelly_multiplier))
        rows, fractions = rows[fractions > 0.0], fractions[fractions > 0.0]
    returns = np.where(y[rows] == 1.0, prices[rows] - 1.0, -1.0)  # profit per unit staked
    if staking == "kelly":
        money = _settle_kelly(returns, fractions, bankroll)
    else:
        money = _settle_flat(returns, bankroll)
    has_bets = len(rows) > 0
    clv = math.nan
    if closing is not None and has_bets:
        clv = float((prices[rows] / closing[rows] - 1.0).mean())
    out = {
        **money,
        METRIC_BETS: float(len(rows)),
        METRIC_CLV: clv,
        METRIC_HIT_RATE: float(y[rows].mean()) if has_bets else math.nan,
    }
    return {name: out[name] for name in BETTING_METRICS}


# --- holdout report -----------------------------------------------------------------------


def _complete_markets(frame: pd.DataFrame, columns: list[str], ids: np.ndarray) -> np.ndarray:
    """Mask of the rows whose market has a value in each of ``columns`` on every row."""
    row_ok = frame[columns].notna().all(axis=1).to_numpy()
    return pd.Series(row_ok).groupby(ids).transform("all").to_numpy(dtype=bool)


def holdout_report(
    frame: pd.DataFrame,
    prob_col: str,
    *,
    odds_col: str,
    closing_col: str,
    true_col: str | None = None,
    won_col: str = "won",
    position_col: str = "position",
    time_col: str = "starts_at",
    market_cols: Sequence[str] = MARKET_KEY_COLUMNS,
    margin_method: MarginMethod = "proportional",
    min_edge: float = 0.02,
    staking: Staking = "flat",
    kelly_multiplier: float = 0.25,
) -> pd.DataFrame:
    """The side-by-side table trainers print and log for a holdout: one row per forecaster.

    Rows (:data:`ROW_MODEL` etc.): the model (``prob_col``), the market's margin-free closing
    probabilities (``closing_col`` by ``margin_method``), the truth (``true_col``, when given and
    filled on every evaluated row: simulated data) and the base rate per position (each
    position's win rate on this frame, normalised within markets: an in-sample baseline). Each is
    scored and bet at ``odds_col`` as in :func:`score_probabilities` and
    :func:`betting_metrics`, with closing-line value against ``closing_col``.

    Markets that are unsettled or miss an odds or closing price on any row are left out (the
    number is logged); a model probability that is missing is an error.

    Returns:
        A frame indexed by forecaster with :data:`REPORT_COLUMNS`.
    """
    needed = [prob_col, odds_col, closing_col, won_col, position_col, time_col, *market_cols]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InvalidInput(f"holdout frame lacks column(s) {missing}")
    all_ids = market_ids_of(frame, market_cols)
    keep = _complete_markets(frame, [won_col, odds_col, closing_col], all_ids)
    data = frame[keep]
    dropped = int((np.bincount(all_ids, weights=~keep) > 0).sum())
    if dropped:
        logger.info("holdout report leaves out %d market(s) without results or odds", dropped)
    if data.empty:
        raise InvalidInput("holdout frame has no settled market with odds and closing odds")
    ids = market_ids_of(data, market_cols)
    won = data[won_col].to_numpy(dtype=float)

    forecasts = {
        ROW_MODEL: data[prob_col].to_numpy(dtype=float),
        ROW_MARKET: market_probabilities_from_odds(data[closing_col], ids, margin_method),
    }
    if true_col is not None and true_col in data.columns and data[true_col].notna().all():
        forecasts[ROW_TRUTH] = data[true_col].to_numpy(dtype=float)
    elif true_col is not None:
        logger.info("holdout report has no truth row: column %r missing or incomplete", true_col)
    base_rate = data.groupby(position_col)[won_col].transform("mean").to_numpy(dtype=float)
    forecasts[ROW_BASE_RATE] = normalise_within_markets(base_rate, ids)

    table = {}
    for name, probabilities in forecasts.items():
        scores = score_probabilities(probabilities, won, ids, data[position_col])
        bets = betting_metrics(
            probabilities,
            data[odds_col],
            won,
            ids,
            data[time_col],
            min_edge=min_edge,
            staking=staking,
            kelly_multiplier=kelly_multiplier,
            closing_odds=data[closing_col],
        )
        table[name] = {**scores, **bets}
    report = pd.DataFrame.from_dict(table, orient="index")[list(REPORT_COLUMNS)]
    report.index.name = "forecaster"
    return report
