"""The strategy scores of betting.strategy_scoring on hand-computable backtests."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from betting.ingest.backtest_export import (
    EXAMPLE_PATH,
    BacktestMetrics,
    BacktestSummary,
    load_backtest_export,
)
from betting.strategy_scoring import (
    MIN_RUNS_FOR_MODEL,
    SCORING_VERSION,
    BacktestFacts,
    OosEstimate,
    OosRoiModel,
    drawdown_distribution,
    estimated_pnl,
    max_drawdowns,
    overfit_score,
    score_backtest,
    shrunk_roi,
)


def _method(roi: float, max_drawdown: float = 0.1, **extra: Any) -> dict[str, Any]:
    return {"sharpe_ratio": 0.5, "sortino_ratio": 0.8, "max_drawdown": max_drawdown,
            "roi": roi, "profit_factor": 1.2, "win_rate": 0.4, **extra}  # fmt: skip


def _walk_forward(roi: float) -> dict[str, Any]:
    window = {"train_start": "2023-01-01T00:00:00Z", "train_end": "2023-06-01T00:00:00Z",
              "test_start": "2023-06-01T00:00:00Z", "test_end": "2023-12-01T00:00:00Z",
              "bets": 10, "roi": roi, "profit": 1.0}  # fmt: skip
    return _method(roi, windows=[window])


def _facts(
    *,
    bets: int = 150,
    win_rate: float = 0.0,
    roi: float = 0.0625,
    profit: float = 10.0,
    wf_roi: float | None = None,
    mc: dict[str, Any] | None = None,
    pnl: list[float] | None = None,
    parameters: dict[str, Any] | None = None,
) -> BacktestFacts:
    summary = BacktestSummary(
        period_start=datetime(2023, 1, 1, tzinfo=UTC), period_end=datetime(2023, 12, 1, tzinfo=UTC),
        initial_capital=100.0, final_capital=100.0 + profit, total_bets=bets, win_rate=win_rate,
        roi=roi, profit=profit,
    )  # fmt: skip
    metrics = BacktestMetrics.model_validate({
        "historical": _method(roi),
        **({"walk_forward": _walk_forward(wf_roi)} if wf_roi is not None else {}),
        **({"monte_carlo": mc} if mc is not None else {}),
    })  # fmt: skip
    array = np.array(pnl, dtype=float) if pnl is not None else None
    return BacktestFacts(summary, metrics, parameters or {}, array)


def test_max_drawdown_of_a_known_sequence() -> None:
    # equity 110, 90, 95, 85, 115: the deepest fall is from 110 to 85
    dd = max_drawdowns(np.array([10.0, -20.0, 5.0, -10.0, 30.0]), 100.0)
    assert dd[0] == pytest.approx(25.0 / 110.0)
    # a loss from the start counts against the initial capital; a wipe-out clips to 1
    assert max_drawdowns(np.array([[-30.0, 10.0], [-80.0, -50.0]]), 100.0) == pytest.approx(
        [0.3, 1.0]
    )


def test_bootstrap_of_constant_bets_is_exact() -> None:
    winning, _ = drawdown_distribution(_facts(pnl=[1.0, 1.0, 1.0]))
    assert (winning.samples, winning.mean, winning.p99) == (2000, 0.0, 0.0)
    ruinous, ruin = drawdown_distribution(_facts(pnl=[-60.0, -60.0]))
    assert (ruinous.p50, ruinous.historical, ruin) == (1.0, 0.1, 1.0)


def test_bootstrap_is_seeded_and_bounded_by_its_worst_case() -> None:
    facts = _facts(pnl=[5.0, -4.0, -4.0, 7.0, -4.0, 3.0])
    first, second = drawdown_distribution(facts), drawdown_distribution(facts)
    assert first == second
    dd = first[0]
    assert 0.0 < dd.p50 <= dd.p95 <= dd.p99 <= max_drawdowns(np.full(6, -4.0), 100.0)[0]


def test_summary_implies_win_and_loss_amounts() -> None:
    facts = _facts(bets=100, win_rate=0.5, roi=0.1, profit=10.0)
    values, weights = estimated_pnl(facts.summary)  # type: ignore[misc]
    # 100 staked in all, 1 per bet, average odds (1 + 0.1) / 0.5 = 2.2
    assert values == pytest.approx([1.2, -1.0]) and weights == pytest.approx([0.5, 0.5])
    assert drawdown_distribution(facts)[0].samples == 2000
    assert estimated_pnl(_facts(win_rate=0.0).summary) is None  # no loss/win split
    assert estimated_pnl(_facts(win_rate=0.5, roi=0.1, profit=-5.0).summary) is None


def test_overfit_score() -> None:
    assert overfit_score(_facts(roi=0.2, wf_roi=0.05).metrics) == pytest.approx(0.75)
    assert overfit_score(_facts(roi=0.2, wf_roi=0.3).metrics) == 0.0
    assert overfit_score(_facts(roi=0.2, wf_roi=-0.5).metrics) == 1.0
    assert overfit_score(_facts(roi=0.2).metrics) is None


def test_score_by_hand() -> None:
    # no bets to resample: p95 = historical 0.1; walk-forward ROI 0.05; overfit
    # (0.0625 - 0.05) / 0.0625 = 0.2; no Monte Carlo: no ruin
    score = score_backtest(_facts(bets=150, roi=0.0625, wf_roi=0.05))
    expected = (0.5 + 0.5 * math.tanh(0.05 / 0.1) * 150 / 200) * (1 - 0.5 * 0.2)
    assert score.score == pytest.approx(expected)
    assert score.risk_adjusted_return == pytest.approx(0.5)
    assert score.overfit_score == pytest.approx(0.2)
    assert score.drawdown.samples == 0 and score.drawdown.p95 == 0.1
    assert (score.expected_oos_source, score.scoring_version) == ("walk-forward", SCORING_VERSION)
    assert score.warnings == (
        "only 150 bets: fewer than 200",
        "no bet history and a summary that implies no bets to resample: the drawdown "
        "distribution is the historical maximum drawdown 0.100 only",
    )


def test_warnings_of_an_overfit_ruinous_strategy() -> None:
    mc = _method(0.1, simulations=1000, final_equity_percentiles={"p5": 40.0},
                 probability_of_profit=0.4, probability_of_ruin=0.2)  # fmt: skip
    score = score_backtest(_facts(bets=40, roi=0.3, wf_roi=-0.1, mc=mc, pnl=[1.0, -1.0]))
    assert score.overfit_score == 1.0 and score.probability_of_ruin == 0.2
    assert score.warnings[0] == "only 40 bets: fewer than 200"
    assert any(w.startswith("overfit score 1.00: walk-forward ROI -0.1000") for w in score.warnings)
    assert any(w.startswith("probability of ruin 0.200") for w in score.warnings)
    assert any("-0.1000 (walk-forward) is not positive" in w for w in score.warnings)
    sound = score_backtest(_facts(bets=400, roi=0.05, wf_roi=0.05, pnl=[1.0, -0.5] * 200))
    assert sound.score > 0.8 > 0.5 > score.score and sound.warnings == ()


def test_without_walk_forward_the_historical_roi_is_shrunk_or_predicted() -> None:
    facts = _facts(bets=200, roi=0.1, pnl=[2.0, -1.0] * 100)
    shrunk = score_backtest(facts, stored_runs_with_walk_forward=3)
    assert shrunk.expected_oos_roi == pytest.approx(shrunk_roi(0.1, 200)) == pytest.approx(0.05)
    assert shrunk.overfit_score is None
    assert any("3 stored runs with them" in w for w in shrunk.warnings)
    learned = score_backtest(facts, predicted=OosEstimate(-0.02, 12))
    assert (learned.expected_oos_roi, learned.expected_oos_source) == (-0.02, "backtest model")
    assert learned.score < 0.5 < shrunk.score
    assert any("predicted by the backtest model (12 stored runs)" in w for w in learned.warnings)


def test_backtest_model_learns_walk_forward_roi_from_history() -> None:
    rng = np.random.default_rng(0)
    runs = []
    for roi, kelly in zip(rng.uniform(-0.1, 0.3, 30), rng.uniform(0.1, 1.0, 30), strict=True):
        # out of sample keeps half of the historical ROI, less the more Kelly is staked
        wf = 0.5 * roi - 0.05 * kelly
        runs.append(_facts(roi=roi, wf_roi=wf, parameters={"kelly_multiplier": kelly}))
    assert OosRoiModel.fit(runs[: MIN_RUNS_FOR_MODEL - 1]) is None
    assert OosRoiModel.fit([_facts(roi=0.1)] * 20) is None  # none has walk-forward metrics
    model = OosRoiModel.fit(runs)
    assert model is not None and model.runs == 30
    good = model.predict(_facts(roi=0.2, parameters={"kelly_multiplier": 0.2}))
    bad = model.predict(_facts(roi=-0.05, parameters={"kelly_multiplier": 0.9}))
    assert good.roi == pytest.approx(0.09, abs=0.02) and good.runs == 30
    assert bad.roi == pytest.approx(-0.07, abs=0.02)
    assert model.low <= model.predict(_facts(roi=50.0)).roi <= model.high  # no extrapolation


def test_facts_of_the_example_export() -> None:
    export = load_backtest_export(EXAMPLE_PATH)
    facts = BacktestFacts.from_export(export)
    assert facts.pnl is not None and len(facts.pnl) == 20 and facts.pnl[0] == -6.91
    score = score_backtest(facts)
    assert 0.0 <= score.score <= 1.0
    assert score.drawdown.samples == 2000 and score.drawdown.historical == 0.0048
    assert score.overfit_score == 0.0  # its walk-forward ROI beats its historical one
