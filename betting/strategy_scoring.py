"""Scores of betting strategies from their backtests (EvaluateStrategy, strategy ranking).

A strategy is judged by one of its backtests (:class:`BacktestFacts`: the export's summary and
metrics per method, its numeric parameters and, when known, the P&L of its settled bets).
:func:`score_backtest` computes, with ``n`` the number of bets and ``C`` the initial capital:

* **Drawdown distribution** (:func:`drawdown_distribution`): the bet P&L sequence is resampled
  with replacement (``DRAWDOWN_SAMPLES`` sequences of ``n`` bets, fixed seed); each sequence's
  equity is ``C + cumsum(pnl)`` and its maximum drawdown the largest fall from a running peak
  (the peak starts at ``C``) over that peak, clipped to [0, 1]. Without a bet history the P&L
  is drawn from the summary instead (:func:`estimated_pnl`: ``n`` bets of equal stake
  ``profit / roi / n`` winning with the win rate at the average odds ``(1 + roi) / win_rate``);
  when neither is possible ``samples`` is 0 and every percentile is the historical drawdown.
  The probability of ruin is the share of sequences whose equity falls below ``C / 2`` (the
  Monte Carlo metrics' own probability, when given, takes precedence).
* **Risk-adjusted return**: ``roi_oos / max(p95, DRAWDOWN_FLOOR)`` with ``roi_oos`` the
  walk-forward ROI when given, else the historical ROI.
* **Overfit score** (:func:`overfit_score`): the share of the historical ROI lost in the
  walk-forward test windows, ``(roi_hist - roi_wf) / max(|roi_hist|, ROI_FLOOR)`` clipped to
  [0, 1]; unset without walk-forward metrics.
* **Expected out-of-sample ROI** ``e``: the walk-forward ROI when given; else the prediction of
  :class:`OosRoiModel` (a ridge regression fitted on stored backtests that have walk-forward
  metrics, historical metrics and parameters -> walk-forward ROI) when one is given; else the
  rule-based estimate :func:`shrunk_roi`, ``roi_hist * n / (n + SHRINK_BETS)``.
* **Score** in [0, 1]::

      score = (0.5 + 0.5 * tanh(e / max(p95, DRAWDOWN_FLOOR)) * n / (n + CONFIDENCE_BETS))
              * (1 - OVERFIT_PENALTY * overfit) * (1 - ruin)

  0.5 is a strategy that neither makes nor loses money out of sample (or one with no bets);
  return per unit of tail drawdown moves it up or down, the more the more bets back it; the
  overfit score (0 when unset) and the probability of ruin scale it down.
* **Warnings**: one sentence per thing that lowered the score (too few bets, large overfit,
  probability of ruin, large drawdown, non-positive expected ROI, missing walk-forward metrics).

Scores of different :data:`SCORING_VERSION` s are not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from betting.errors import InvalidInput
from betting.ingest.backtest_export import BacktestMetrics, BacktestSummary, MLExport

#: Version of the scoring rules below; bump it when any of them changes.
SCORING_VERSION = "1.0"
#: Resampled bet sequences of the drawdown distribution.
DRAWDOWN_SAMPLES = 2000
#: Seed of the resampling: the same backtest always gets the same distribution.
DRAWDOWN_SEED = 20240601
#: Drawdown below which the risk-adjusted return stops growing (a 1% drawdown).
DRAWDOWN_FLOOR = 0.01
#: Smallest |historical ROI| the overfit score divides by.
ROI_FLOOR = 0.01
#: Bets at which the rule-based out-of-sample ROI keeps half of the historical ROI.
SHRINK_BETS = 200
#: Bets at which the score moves half-way from 0.5 towards its return component.
CONFIDENCE_BETS = 50
#: Share of the score an overfit score of 1 takes away.
OVERFIT_PENALTY = 0.5
#: Fewer bets than this are warned about.
MIN_BETS = 200
#: An overfit score from this is warned about.
LARGE_OVERFIT = 0.5
#: A probability of ruin from this is warned about.
RUIN_WARNING = 0.01
#: A 95th-percentile maximum drawdown from this is warned about.
LARGE_DRAWDOWN = 0.25
#: Stored runs with walk-forward metrics needed to fit :class:`OosRoiModel`.
MIN_RUNS_FOR_MODEL = 8
#: Historical metrics the backtest model reads, then log(1 + bets), then these parameters.
METRIC_FEATURES = (
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "roi",
    "profit_factor",
    "win_rate",
)
PARAMETER_FEATURES = (
    "min_edge", "min_expected_value", "kelly_multiplier", "max_stake_fraction", "min_odds",
    "max_odds",
)  # fmt: skip
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class BacktestFacts:
    """What a strategy is scored from: one backtest.

    Attributes:
        summary: the backtest's period and headline numbers.
        metrics: metrics per evaluation method (historical required).
        parameters: the strategy's parameters (numeric ones feed :class:`OosRoiModel`).
        pnl: P&L of the settled bets in time order, currency units; None when unknown.
    """

    summary: BacktestSummary
    metrics: BacktestMetrics
    parameters: Mapping[str, Any] = field(default_factory=dict)
    pnl: np.ndarray | None = None

    @classmethod
    def from_export(cls, export: MLExport) -> BacktestFacts:
        """The facts of a whole export (its pending bets are left out of the P&L)."""
        bets = sorted(export.bets, key=lambda b: b.placed_at)
        pnl = np.array([b.pnl for b in bets if b.outcome != "pending"], dtype=float)
        return cls(export.summary, export.metrics, export.strategy.parameters, pnl)


@dataclass(frozen=True)
class DrawdownDistribution:
    """Maximum drawdowns of resampled bet sequences (fractions of peak equity)."""

    samples: int
    mean: float
    p50: float
    p95: float
    p99: float
    historical: float


@dataclass(frozen=True)
class OosEstimate:
    """An expected out-of-sample ROI predicted by :class:`OosRoiModel`."""

    roi: float
    runs: int
    """Stored runs the model was fitted on."""


@dataclass(frozen=True)
class StrategyScore:
    """The score of one backtest (see the module docstring for every formula)."""

    score: float
    risk_adjusted_return: float
    drawdown: DrawdownDistribution
    overfit_score: float | None
    expected_oos_roi: float
    expected_oos_source: str
    """``walk-forward``, ``backtest model`` or ``shrunk historical``."""
    probability_of_ruin: float
    warnings: tuple[str, ...]
    scoring_version: str = SCORING_VERSION


def max_drawdowns(pnl: np.ndarray, initial_capital: float) -> np.ndarray:
    """The maximum drawdown of each row of ``pnl`` (sequences of bet P&L), in [0, 1]."""
    pnl = np.atleast_2d(np.asarray(pnl, dtype=float))
    return _equity_drawdowns(initial_capital + np.cumsum(pnl, axis=1), initial_capital)


def _equity_drawdowns(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), initial_capital)
    return np.clip(((peak - equity) / peak).max(axis=1, initial=0.0), 0.0, 1.0)


def estimated_pnl(summary: BacktestSummary) -> tuple[np.ndarray, np.ndarray] | None:
    """The two P&L values (a win, a loss) and their probabilities implied by a summary, or None
    when it cannot imply them (fewer than 2 bets, no win or no loss, ROI 0 or of the other sign
    than the profit)."""
    n, w, roi = summary.total_bets, summary.win_rate, summary.roi
    if n < 2 or not 0.0 < w < 1.0 or roi == 0.0 or summary.profit / roi <= 0.0:
        return None
    stake = summary.profit / roi / n
    odds = (1.0 + roi) / w
    if not odds > 1.0:
        return None
    return np.array([stake * (odds - 1.0), -stake]), np.array([w, 1.0 - w])


def drawdown_distribution(
    facts: BacktestFacts, *, samples: int = DRAWDOWN_SAMPLES, seed: int = DRAWDOWN_SEED
) -> tuple[DrawdownDistribution, float | None]:
    """The maximum-drawdown distribution of ``facts`` and its probability of ruin (None when
    nothing could be resampled), as the module docstring describes."""
    historical = facts.metrics.historical.max_drawdown
    capital = facts.summary.initial_capital
    rng = np.random.default_rng(seed)
    if facts.pnl is not None and len(facts.pnl) >= 2:
        values, weights, n = np.asarray(facts.pnl, dtype=float), None, len(facts.pnl)
    elif (implied := estimated_pnl(facts.summary)) is not None:
        (values, weights), n = implied, facts.summary.total_bets
    else:
        only = DrawdownDistribution(0, historical, historical, historical, historical, historical)
        return only, None
    chunk = max(1, _CHUNK_CELLS // n)
    drawdowns, ruined = [], 0
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        equity = capital + np.cumsum(rng.choice(values, size=(size, n), p=weights), axis=1)
        drawdowns.append(_equity_drawdowns(equity, capital))
        ruined += int((equity.min(axis=1) < capital / 2).sum())
    dd = np.concatenate(drawdowns)
    p50, p95, p99 = (float(v) for v in np.percentile(dd, [50, 95, 99]))
    return DrawdownDistribution(samples, float(dd.mean()), p50, p95, p99, historical), (
        ruined / samples
    )


def overfit_score(metrics: BacktestMetrics) -> float | None:
    """Share of the historical ROI lost in the walk-forward windows, in [0, 1]; None without
    walk-forward metrics."""
    if metrics.walk_forward is None:
        return None
    h, w = metrics.historical.roi, metrics.walk_forward.roi
    return float(np.clip((h - w) / max(abs(h), ROI_FLOOR), 0.0, 1.0))


def shrunk_roi(historical_roi: float, bets: int) -> float:
    """The rule-based expected out-of-sample ROI: the historical ROI shrunk towards 0, by half at
    ``SHRINK_BETS`` bets."""
    return historical_roi * bets / (bets + SHRINK_BETS)


def score_backtest(
    facts: BacktestFacts,
    *,
    predicted: OosEstimate | None = None,
    stored_runs_with_walk_forward: int = 0,
    drawdown_samples: int = DRAWDOWN_SAMPLES,
) -> StrategyScore:
    """Score one backtest (see the module docstring).

    Args:
        facts: the backtest.
        predicted: the backtest model's expected out-of-sample ROI, used when ``facts`` has no
            walk-forward metrics; None when there is no model.
        stored_runs_with_walk_forward: how many stored runs could train the model (for the
            warning when there is none).
        drawdown_samples: sequences of the drawdown distribution (fewer for a quick screen).
    """
    metrics, n = facts.metrics, facts.summary.total_bets
    hist, wf, mc = metrics.historical, metrics.walk_forward, metrics.monte_carlo
    drawdown, resampled_ruin = drawdown_distribution(facts, samples=drawdown_samples)
    overfit = overfit_score(metrics)
    if wf is not None:
        expected, source = wf.roi, "walk-forward"
    elif predicted is not None:
        expected, source = predicted.roi, "backtest model"
    else:
        expected, source = shrunk_roi(hist.roi, n), "shrunk historical"
    ruin = mc.probability_of_ruin if mc is not None else (resampled_ruin or 0.0)
    tail = max(drawdown.p95, DRAWDOWN_FLOOR)
    risk_adjusted = (wf.roi if wf is not None else hist.roi) / tail
    quality = 0.5 + 0.5 * math.tanh(expected / tail) * n / (n + CONFIDENCE_BETS)
    score = quality * (1.0 - OVERFIT_PENALTY * (overfit or 0.0)) * (1.0 - ruin)
    warnings = _warnings(facts, drawdown, overfit, expected, source, ruin, predicted,
                         stored_runs_with_walk_forward)  # fmt: skip
    return StrategyScore(
        score=float(np.clip(score, 0.0, 1.0)),
        risk_adjusted_return=float(risk_adjusted),
        drawdown=drawdown,
        overfit_score=overfit,
        expected_oos_roi=float(expected),
        expected_oos_source=source,
        probability_of_ruin=float(ruin),
        warnings=tuple(warnings),
    )


def _warnings(
    facts: BacktestFacts,
    drawdown: DrawdownDistribution,
    overfit: float | None,
    expected: float,
    source: str,
    ruin: float,
    predicted: OosEstimate | None,
    runs: int,
) -> list[str]:
    n, hist = facts.summary.total_bets, facts.metrics.historical
    out = []
    if n < MIN_BETS:
        out.append(f"only {n} bets: fewer than {MIN_BETS}")
    if overfit is not None and overfit >= LARGE_OVERFIT:
        wf_roi = facts.metrics.walk_forward.roi  # type: ignore[union-attr]
        out.append(
            f"overfit score {overfit:.2f}: walk-forward ROI {wf_roi:.4f} against historical "
            f"ROI {hist.roi:.4f}"
        )
    if ruin >= RUIN_WARNING:
        out.append(
            f"probability of ruin {ruin:.3f}: {ruin:.1%} of resampled bet sequences fall below "
            "half the initial capital"
        )
    if drawdown.p95 >= LARGE_DRAWDOWN:
        out.append(
            f"95th-percentile maximum drawdown {drawdown.p95:.3f} is at least {LARGE_DRAWDOWN}"
        )
    if drawdown.samples == 0:
        out.append(
            "no bet history and a summary that implies no bets to resample: the drawdown "
            f"distribution is the historical maximum drawdown {drawdown.historical:.3f} only"
        )
    if expected <= 0.0:
        out.append(f"expected out-of-sample ROI {expected:.4f} ({source}) is not positive")
    if source == "backtest model" and predicted is not None:
        out.append(
            f"no walk-forward metrics: out-of-sample ROI {expected:.4f} predicted by the "
            f"backtest model ({predicted.runs} stored runs) from historical ROI {hist.roi:.4f}"
        )
    elif source == "shrunk historical":
        out.append(
            f"no walk-forward metrics and {runs} stored runs with them (the backtest model needs "
            f"{MIN_RUNS_FOR_MODEL}): out-of-sample ROI {expected:.4f} estimated by shrinking "
            f"historical ROI {hist.roi:.4f}"
        )
    return out


# --- the backtest model: historical metrics and parameters -> walk-forward ROI -----------------


def backtest_features(facts: BacktestFacts) -> np.ndarray:
    """The backtest model's inputs of one backtest: :data:`METRIC_FEATURES` of the historical
    metrics, ``log(1 + bets)``, then :data:`PARAMETER_FEATURES` (NaN when absent or not a
    number)."""
    hist = facts.metrics.historical
    values = [getattr(hist, name) for name in METRIC_FEATURES]
    values.append(math.log1p(facts.summary.total_bets))
    for name in PARAMETER_FEATURES:
        value = facts.parameters.get(name)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        values.append(float(value) if is_number else math.nan)  # type: ignore[arg-type]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


@dataclass(frozen=True)
class OosRoiModel:
    """A ridge regression of the walk-forward ROI on :func:`backtest_features`, fitted on
    stored backtests that have walk-forward metrics; predictions are clipped to the range of
    the walk-forward ROIs it saw (it never extrapolates past them)."""

    pipeline: Any
    runs: int
    low: float
    high: float

    @classmethod
    def fit(cls, runs: Sequence[BacktestFacts], *, alpha: float = 1.0) -> OosRoiModel | None:
        """Fit on the runs with walk-forward metrics; None when fewer than
        :data:`MIN_RUNS_FOR_MODEL` have them."""
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        usable = [r for r in runs if r.metrics.walk_forward is not None]
        if len(usable) < MIN_RUNS_FOR_MODEL:
            return None
        x = np.vstack([backtest_features(r) for r in usable])
        y = np.array([r.metrics.walk_forward.roi for r in usable])  # type: ignore[union-attr]
        pipeline = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            Ridge(alpha=alpha),
        )
        pipeline.fit(x, y)
        return cls(pipeline, len(usable), float(y.min()), float(y.max()))

    def predict(self, facts: BacktestFacts) -> OosEstimate:
        """The expected out-of-sample ROI of one backtest."""
        x = backtest_features(facts)[None, :]
        roi = float(np.clip(self.pipeline.predict(x)[0], self.low, self.high))
        if not math.isfinite(roi):
            raise InvalidInput(f"the backtest model predicted a non-finite ROI {roi!r}")
        return OosEstimate(roi, self.runs)
