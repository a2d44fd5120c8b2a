"""Searching staking parameters by backtesting them on settled markets (GenerateStrategy).

The input is a table of settled markets' selections with a model's probability ``p``, the price
a strategy would get ``odds`` and the outcome ``won`` (one row per selection, ``market`` naming
the market, ``starts_at`` its start). A :class:`Candidate` bets, in each market, on the
selection with the highest edge ``p * odds - 1`` among those priced inside its odds range, when
that edge reaches its ``min_edge`` (never below tier C's 2%, as GetPrediction recommends), and
stakes ``kelly_multiplier`` times the Kelly fraction, capped at ``max_stake_fraction``, of the
current bankroll: GetPrediction's recommendation with those staking options.

Every candidate of a small grid (:func:`candidate_grid`) is backtested with
:func:`betting.bankroll.backtest_metrics`, markets settled in start order from
:data:`INITIAL_CAPITAL`:

* the markets are cut into :data:`BLOCKS` blocks in time order; candidates are *chosen* on the
  first half (their score there, :func:`betting.strategy_scoring.score_backtest`, in the top
  half marks them ``chosen_early``) and *judged* on the later blocks, walk-forward: window k
  trains on blocks 0..k-1 and tests on block k, and the test blocks' bets make the
  walk-forward metrics;
* the historical metrics cover every market, and the Monte Carlo metrics resample the bets'
  bankroll returns (:data:`MONTE_CARLO_SAMPLES` sequences, fixed seed, compounded);
* each candidate's score is :func:`~betting.strategy_scoring.score_backtest` of that backtest,
  the same score EvaluateStrategy gives it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from betting.bankroll import backtest_metrics, bankroll_path, best_edge_rows
from betting.errors import InvalidInput
from betting.ingest.backtest_export import (
    BacktestMetrics,
    BacktestSummary,
    MethodMetrics,
    MonteCarloMetrics,
    RiskProfile,
    WalkForwardMetrics,
    WalkForwardWindow,
)
from betting.odds import TIER_C_MIN_EDGE, kelly_fraction
from betting.strategy_scoring import BacktestFacts, StrategyScore, score_backtest

#: Bankroll every backtest starts from, currency units.
INITIAL_CAPITAL = 1000.0
#: Blocks of markets, in time order: the first half chooses, the later blocks judge.
BLOCKS = 4
#: Fewest markets a search runs on (a block needs a few).
MIN_MARKETS = 20
MONTE_CARLO_SAMPLES = 1000
#: Drawdown sequences of the quick score on the early span that chooses candidates.
SCREEN_SAMPLES = 300
MONTE_CARLO_SEED = 7
#: The grid: every combination of these (stake caps above the constraint's cap are dropped).
MIN_EDGES = (TIER_C_MIN_EDGE, 0.04, 0.07, 0.10)
KELLY_MULTIPLIERS = (0.1, 0.25, 0.5)
MAX_STAKE_FRACTIONS = (0.01, 0.02, 0.05)
#: A second, tighter odds ceiling tried beside the constraint's range.
TIGHT_MAX_ODDS = 4.0
TABLE_COLUMNS = ("market", "starts_at", "p", "odds", "won")


@dataclass(frozen=True)
class Candidate:
    """Staking parameters of one strategy."""

    min_edge: float
    kelly_multiplier: float
    max_stake_fraction: float
    min_odds: float | None = None
    max_odds: float | None = None

    def parameters(self) -> dict[str, Any]:
        """The parameters as the Go backtester reads them (unset odds bounds left out)."""
        out: dict[str, Any] = {
            "min_edge": self.min_edge,
            "kelly_multiplier": self.kelly_multiplier,
            "max_stake_fraction": self.max_stake_fraction,
        }
        if self.min_odds is not None:
            out["min_odds"] = self.min_odds
        if self.max_odds is not None:
            out["max_odds"] = self.max_odds
        return out


@dataclass(frozen=True)
class Judged:
    """A candidate's backtests and score."""

    candidate: Candidate
    summary: BacktestSummary
    metrics: BacktestMetrics
    risk_profile: RiskProfile
    early_summary: BacktestSummary
    early_metrics: BacktestMetrics
    score: StrategyScore
    chosen_early: bool


def candidate_grid(
    *,
    min_odds: float | None = None,
    max_odds: float | None = None,
    max_stake_fraction: float | None = None,
) -> list[Candidate]:
    """The candidates inside the constraints: stake caps up to ``max_stake_fraction`` (the cap
    itself when every grid value is above it), the odds range given, and a range with the
    ceiling :data:`TIGHT_MAX_ODDS` when that is inside it."""
    caps = [c for c in MAX_STAKE_FRACTIONS if max_stake_fraction is None or c <= max_stake_fraction]
    if not caps and max_stake_fraction is not None:
        caps = [max_stake_fraction]
    ranges = [(min_odds, max_odds)]
    if (max_odds is None or max_odds > TIGHT_MAX_ODDS) and (min_odds or 1.0) < TIGHT_MAX_ODDS:
        ranges.append((min_odds, TIGHT_MAX_ODDS))
    return [
        Candidate(edge, kelly, cap, low, high)
        for (low, high), edge, kelly, cap in itertools.product(
            ranges, MIN_EDGES, KELLY_MULTIPLIERS, caps
        )
    ]


def _check_table(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise InvalidInput(f"the market table lacks column(s) {missing}")
    return table.sort_values(["starts_at", "market"], kind="stable").reset_index(drop=True)


def _span_metrics(
    fractions: np.ndarray, odds: np.ndarray, won: np.ndarray
) -> tuple[MethodMetrics, np.ndarray, np.ndarray]:
    """Historical metrics of one span, the money P&L of its bets and their bankroll returns."""
    m = backtest_metrics(fractions, odds, won, bankroll=INITIAL_CAPITAL)
    path = bankroll_path(fractions, odds, won, bankroll=INITIAL_CAPITAL)
    bets = fractions > 0.0
    pnl = np.diff(path)[bets]
    returns = (fractions * np.where(won == 1.0, odds - 1.0, -1.0))[bets]
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)) if len(returns) else 0.0
    losses = -pnl[pnl < 0].sum()
    metrics = MethodMetrics(
        sharpe_ratio=_finite(m["sharpe"]),
        sortino_ratio=float(returns.mean() / downside) if downside > 0 else 0.0,
        max_drawdown=float(np.clip(m["max_drawdown"], 0.0, 1.0)),
        roi=_finite(m["roi"]),
        profit_factor=float(pnl[pnl > 0].sum() / losses) if losses > 0 else None,
        win_rate=_finite(m["hit_rate"]),
    )
    return metrics, pnl, returns


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _summary(
    start: datetime, end: datetime, metrics: MethodMetrics, pnl: np.ndarray
) -> BacktestSummary:
    profit = float(pnl.sum())
    return BacktestSummary(
        period_start=start, period_end=end, initial_capital=INITIAL_CAPITAL,
        final_capital=max(INITIAL_CAPITAL + profit, 0.0), total_bets=len(pnl),
        win_rate=metrics.win_rate, roi=metrics.roi, profit=profit,
    )  # fmt: skip


def _monte_carlo(returns: np.ndarray, metrics: MethodMetrics) -> MonteCarloMetrics | None:
    """Resampled, compounded sequences of the bets' bankroll returns."""
    if len(returns) < 2:
        return None
    rng = np.random.default_rng(MONTE_CARLO_SEED)
    drawn = rng.choice(returns, size=(MONTE_CARLO_SAMPLES, len(returns)), replace=True)
    log_path = np.cumsum(np.log1p(np.maximum(drawn, -1.0 + 1e-12)), axis=1)
    equity = INITIAL_CAPITAL * np.exp(log_path)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), INITIAL_CAPITAL)
    drawdowns = ((peak - equity) / peak).max(axis=1)
    final = equity[:, -1]
    percentiles = {f"p{q}": float(np.percentile(final, q)) for q in (5, 25, 50, 75, 95)}
    return MonteCarloMetrics(
        **metrics.model_dump(exclude={"max_drawdown"}),
        max_drawdown=float(np.clip(drawdowns.mean(), 0.0, 1.0)),
        simulations=MONTE_CARLO_SAMPLES, final_equity_percentiles=percentiles,
        probability_of_profit=float((final > INITIAL_CAPITAL).mean()),
        probability_of_ruin=float((equity.min(axis=1) < INITIAL_CAPITAL / 2).mean()),
    )  # fmt: skip


def _risk_profile(
    candidate: Candidate, metrics: MethodMetrics, returns: np.ndarray, p95: float
) -> RiskProfile:
    level = "low" if p95 < 0.1 else "medium" if p95 < 0.2 else "high" if p95 < 0.35 else "very_high"
    return RiskProfile(
        max_drawdown=metrics.max_drawdown,
        var_95=float(max(-np.percentile(returns, 5), 0.0)) if len(returns) else 0.0,
        volatility=float(returns.std()) if len(returns) else 0.0,
        kelly_fraction=candidate.kelly_multiplier,
        risk_level=level,  # type: ignore[arg-type]
    )


class _Decisions:
    """Per odds range, each market's chosen row (or none) over the sorted table."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.codes = np.unique(table["market"].to_numpy(), return_inverse=True)[1]
        first_rows = np.sort(np.unique(self.codes, return_index=True)[1])
        self.starts = table["starts_at"].to_numpy()[first_rows]  # markets in time order
        self.p = table["p"].to_numpy(float)
        self.odds = table["odds"].to_numpy(float)
        self.won = table["won"].to_numpy(float)
        self._chosen: dict[tuple[float | None, float | None], tuple[np.ndarray, ...]] = {}

    def chosen(self, low: float | None, high: float | None) -> tuple[np.ndarray, ...]:
        """Per market in time order: the odds, outcome, edge and full Kelly of its best-edge
        selection inside [low, high] (edge -inf when none is inside)."""
        key = (low, high)
        if key not in self._chosen:
            inside = (self.odds >= (low or 1.0)) & (self.odds <= (high or np.inf))
            p = np.where(inside, self.p, 0.0)
            rows = best_edge_rows(p, self.odds, self.codes)
            edge = np.where(inside[rows], p[rows] * self.odds[rows] - 1.0, -np.inf)
            kelly = np.asarray(kelly_fraction(p[rows], self.odds[rows]), dtype=float)
            self._chosen[key] = (self.odds[rows], self.won[rows], edge, kelly)
        return self._chosen[key]


def search(table: pd.DataFrame, candidates: list[Candidate]) -> list[Judged]:
    """Backtest and score every candidate on ``table`` (see the module docstring); candidates
    that never bet are left out.

    Raises:
        InvalidInput: fewer than :data:`MIN_MARKETS` markets, or a table without the
            :data:`TABLE_COLUMNS`.
    """
    table = _check_table(table)
    decisions = _Decisions(table)
    n = len(decisions.starts)
    if n < MIN_MARKETS:
        raise InvalidInput(f"{n} settled markets: a search needs at least {MIN_MARKETS}")
    starts = pd.to_datetime(pd.Series(decisions.starts), utc=True)
    blocks = np.array_split(np.arange(n), BLOCKS)
    half = int(blocks[BLOCKS // 2][0])  # markets [0, half) choose, the later ones judge
    judged, early_scores = [], []
    for candidate in candidates:
        odds, won, edge, kelly = decisions.chosen(candidate.min_odds, candidate.max_odds)
        bet = edge >= max(candidate.min_edge, TIER_C_MIN_EDGE) - 1e-9
        fractions = np.where(
            bet, np.minimum(candidate.kelly_multiplier * kelly, candidate.max_stake_fraction), 0.0
        )
        if not (fractions > 0).any():
            continue
        hist, pnl, returns = _span_metrics(fractions, odds, won)
        e_metrics, e_pnl, _ = _span_metrics(fractions[:half], odds[:half], won[:half])
        e_summary = _summary(starts.iloc[0], starts.iloc[half - 1], e_metrics, e_pnl)
        e_facts = BacktestFacts(e_summary, BacktestMetrics(historical=e_metrics), {}, e_pnl)
        screened = score_backtest(e_facts, drawdown_samples=SCREEN_SAMPLES) if len(e_pnl) else None
        early_scores.append(screened.score if screened else 0.0)
        walk_forward = _walk_forward(fractions, odds, won, starts, blocks)
        mc = _monte_carlo(returns, hist)
        metrics = BacktestMetrics(historical=hist, monte_carlo=mc, walk_forward=walk_forward)
        summary = _summary(starts.iloc[0], starts.iloc[-1], hist, pnl)
        facts = BacktestFacts(summary, metrics, candidate.parameters(), pnl)
        score = score_backtest(facts)
        risk = _risk_profile(candidate, hist, returns, score.drawdown.p95)
        judged.append(
            Judged(
                candidate,
                summary,
                metrics,
                risk,
                e_summary,
                BacktestMetrics(historical=e_metrics),
                score,
                False,
            )
        )
    if judged:
        cut = float(np.median(early_scores))
        judged = [
            Judged(**{**j.__dict__, "chosen_early": s >= cut})
            for j, s in zip(judged, early_scores, strict=True)
        ]
    return judged


def _walk_forward(
    fractions: np.ndarray,
    odds: np.ndarray,
    won: np.ndarray,
    starts: pd.Series,
    blocks: list[np.ndarray],
) -> WalkForwardMetrics | None:
    """The candidate on the later blocks: window k trains on blocks 0..k-1, tests on block k."""
    tests = blocks[BLOCKS // 2 :]
    windows = []
    for block in tests:
        f, o, w = fractions[block], odds[block], won[block]
        m, pnl, returns = _span_metrics(f, o, w)
        sharpe = m.sharpe_ratio if len(returns) > 1 else None
        windows.append(
            WalkForwardWindow(
                train_start=starts.iloc[0],
                train_end=starts.iloc[block[0] - 1],
                test_start=starts.iloc[block[0]],
                test_end=starts.iloc[block[-1]],
                bets=len(pnl),
                roi=m.roi,
                profit=float(pnl.sum()),
                sharpe_ratio=sharpe,
            )
        )
    later = np.concatenate(tests)
    if not (fractions[later] > 0).any():
        return None
    m, _, _ = _span_metrics(fractions[later], odds[later], won[later])
    return WalkForwardMetrics(**m.model_dump(), windows=windows)


def meets(judged: Judged, *, max_drawdown: float, min_bets: int) -> bool:
    """Whether a candidate meets the constraints its backtest decides (the odds range, stake
    cap and bookmakers are built into the candidates)."""
    return judged.summary.total_bets >= min_bets and judged.score.drawdown.p95 <= max_drawdown


def unmet_constraints(judged: list[Judged], *, max_drawdown: float, min_bets: int) -> list[str]:
    """Why no candidate meets the constraints, one sentence per constraint none meets (or one
    for the pair when each is met alone but never both)."""
    if not judged:
        return ["min_bets: no candidate placed a single bet on the settled markets"]
    out = []
    least_drawdown = min(j.score.drawdown.p95 for j in judged)
    most_bets = max(j.summary.total_bets for j in judged)
    if least_drawdown > max_drawdown:
        out.append(
            f"max_drawdown {max_drawdown:g}: the best candidate's 95th-percentile drawdown is "
            f"{least_drawdown:.3f}"
        )
    if most_bets < min_bets:
        out.append(f"min_bets {min_bets}: the most bets a candidate placed is {most_bets}")
    if not out:
        enough = min(j.score.drawdown.p95 for j in judged if j.summary.total_bets >= min_bets)
        out.append(
            f"max_drawdown {max_drawdown:g} with min_bets {min_bets}: the candidates with "
            f"{min_bets} bets or more have a 95th-percentile drawdown of {enough:.3f} or more"
        )
    return out
