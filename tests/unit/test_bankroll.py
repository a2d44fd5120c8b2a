"""Bankroll arithmetic: hand-computed settlements and backtest metrics, refused input, and the
choice of one selection per market."""

from __future__ import annotations

import math

import numpy as np
import pytest

from betting.bankroll import (
    BACKTEST_METRICS,
    METRIC_FINAL_BANKROLL,
    METRIC_SHARPE,
    backtest_metrics,
    bankroll_path,
    best_edge_rows,
    settle_bet,
)
from betting.errors import InvalidInput
from betting.evaluation import (
    BETTING_METRICS,
    METRIC_BETS,
    METRIC_CLV,
    METRIC_HIT_RATE,
    METRIC_LOG_GROWTH,
    METRIC_MAX_DRAWDOWN,
    METRIC_PROFIT,
    METRIC_ROI,
    METRIC_TURNOVER,
    betting_metrics,
)
from betting.odds import fractional_kelly

# A bankroll of 100 through four decisions:
#   2% at 3.0, won:    stake 2.00, +4.00  -> 104.00
#   no bet             -> 104.00
#   5% at 2.0, lost:   stake 5.20, -5.20  -> 98.80  (5.20 below the peak of 104: a 5% drawdown)
#   10% at 1.5, won:   stake 9.88, +4.94  -> 103.74
SEQ_FRACTIONS = [0.02, 0.0, 0.05, 0.10]
SEQ_ODDS = [3.0, 2.0, 2.0, 1.5]
SEQ_WON = [1, 0, 0, 1]
SEQ_CLOSING = [2.8, 2.5, 2.1, 1.6]


def test_one_bet_at_three_wins_or_loses_twice_its_stake() -> None:
    assert settle_bet(100.0, 0.02, 3.0, won=True) == pytest.approx(104.0)
    assert settle_bet(100.0, 0.02, 3.0, won=False) == pytest.approx(98.0)
    won = backtest_metrics([0.02], [3.0], [1], bankroll=100.0)
    assert won[METRIC_FINAL_BANKROLL] == pytest.approx(104.0)
    assert won[METRIC_TURNOVER] == pytest.approx(0.02)  # in starting bankrolls
    assert won[METRIC_PROFIT] == pytest.approx(0.04)
    assert won[METRIC_ROI] == pytest.approx(2.0)
    assert won[METRIC_LOG_GROWTH] == pytest.approx(math.log(1.04))
    lost = backtest_metrics([0.02], [3.0], [0], bankroll=100.0)
    assert lost[METRIC_FINAL_BANKROLL] == pytest.approx(98.0)
    assert lost[METRIC_ROI] == pytest.approx(-1.0)
    assert lost[METRIC_MAX_DRAWDOWN] == pytest.approx(0.02)


def test_a_sequence_of_decisions_by_hand() -> None:
    m = backtest_metrics(SEQ_FRACTIONS, SEQ_ODDS, SEQ_WON, SEQ_CLOSING, bankroll=100.0)

    assert list(m) == list(BACKTEST_METRICS)
    assert m[METRIC_BETS] == 3  # the row with fraction 0 is a decision, not a bet
    assert m[METRIC_TURNOVER] == pytest.approx((2.0 + 5.2 + 9.88) / 100)
    assert m[METRIC_PROFIT] == pytest.approx(0.0374)
    assert m[METRIC_ROI] == pytest.approx(3.74 / 17.08)
    assert m[METRIC_LOG_GROWTH] == pytest.approx(math.log(1.0374))
    assert m[METRIC_MAX_DRAWDOWN] == pytest.approx(5.2 / 104)
    assert m[METRIC_CLV] == pytest.approx((3.0 / 2.8 + 2.0 / 2.1 + 1.5 / 1.6 - 3) / 3)
    assert m[METRIC_HIT_RATE] == pytest.approx(2 / 3)
    assert m[METRIC_FINAL_BANKROLL] == pytest.approx(103.74)
    # Returns on the bankroll per bet: 0.02 * 2, 0.05 * -1, 0.10 * 0.5.
    r = np.array([0.04, -0.05, 0.05])
    assert m[METRIC_SHARPE] == pytest.approx(r.mean() / r.std(ddof=1))
    assert bankroll_path(SEQ_FRACTIONS, SEQ_ODDS, SEQ_WON, bankroll=100.0) == pytest.approx(
        [100.0, 104.0, 104.0, 98.8, 103.74]
    )


def test_the_path_is_settle_bet_decision_after_decision() -> None:
    rng = np.random.default_rng(3)
    n = 500
    fractions = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 0.2, n))
    odds = rng.uniform(1.05, 8.0, n)
    won = (rng.random(n) < 1 / odds).astype(int)
    expected = [10.0]
    for f, o, w in zip(fractions, odds, won, strict=True):
        expected.append(settle_bet(expected[-1], f, o, bool(w)))
    path = bankroll_path(fractions, odds, won, bankroll=10.0)
    assert path == pytest.approx(expected, rel=1e-9)
    metrics = backtest_metrics(fractions, odds, won, bankroll=10.0)
    assert metrics[METRIC_FINAL_BANKROLL] == pytest.approx(expected[-1], rel=1e-9)


def test_the_same_numbers_as_the_kelly_betting_view_of_evaluation() -> None:
    rng = np.random.default_rng(8)
    n = 300  # one selection per market, so both bet the same rows
    p, odds = rng.uniform(0.1, 0.9, n), rng.uniform(1.2, 6.0, n)
    won = (rng.random(n) < p).astype(int)
    closing = odds * rng.uniform(0.95, 1.05, n)
    view = betting_metrics(
        p, odds, won, np.arange(n), np.arange(n), min_edge=0.0, staking="kelly",
        kelly_multiplier=0.5, closing_odds=closing,
    )  # fmt: skip
    ours = backtest_metrics(fractional_kelly(p, odds, 0.5), odds, won, closing)
    for name in BETTING_METRICS:
        assert ours[name] == pytest.approx(view[name], rel=1e-9), name


def test_no_bets_leave_the_bankroll_alone() -> None:
    m = backtest_metrics([0.0, 0.0], [2.0, 3.0], [1, 0], [2.0, 3.0], bankroll=50.0)
    assert m[METRIC_BETS] == 0 and m[METRIC_TURNOVER] == 0 and m[METRIC_PROFIT] == 0
    assert m[METRIC_LOG_GROWTH] == 0 and m[METRIC_MAX_DRAWDOWN] == 0
    assert m[METRIC_FINAL_BANKROLL] == 50.0
    for undefined in (METRIC_ROI, METRIC_SHARPE, METRIC_CLV, METRIC_HIT_RATE):
        assert math.isnan(m[undefined]), undefined
    assert backtest_metrics([], [], [])[METRIC_FINAL_BANKROLL] == 1.0
    assert bankroll_path([], [], []) == pytest.approx([1.0])


def test_sharpe_needs_two_bets_that_differ_and_clv_needs_closing_odds() -> None:
    assert math.isnan(backtest_metrics([0.1], [2.0], [1], [2.0])[METRIC_SHARPE])
    assert math.isnan(backtest_metrics([0.1, 0.1], [2.0, 2.0], [1, 1])[METRIC_SHARPE])
    assert math.isnan(backtest_metrics([0.1, 0.1], [2.0, 2.0], [1, 0])[METRIC_CLV])


def test_a_lost_whole_bankroll_is_ruin() -> None:
    m = backtest_metrics([1.0, 0.5], [2.0, 2.0], [0, 1])
    assert m[METRIC_LOG_GROWTH] == -math.inf and m[METRIC_FINAL_BANKROLL] == 0.0
    assert m[METRIC_MAX_DRAWDOWN] == 1.0 and m[METRIC_TURNOVER] == pytest.approx(1.0)
    assert bankroll_path([1.0, 0.5], [2.0, 2.0], [0, 1]) == pytest.approx([1.0, 0.0, 0.0])


def test_a_long_winning_run_does_not_overflow_the_metrics() -> None:
    n = 5000  # doubling 5000 times: 2**5000 overflows a float, its log does not
    m = backtest_metrics(np.full(n, 0.5), np.full(n, 3.0), np.ones(n))
    assert m[METRIC_LOG_GROWTH] == pytest.approx(n * math.log(2.0))
    assert m[METRIC_ROI] == pytest.approx(2.0) and m[METRIC_MAX_DRAWDOWN] == 0.0
    assert m[METRIC_FINAL_BANKROLL] == math.inf  # money itself may overflow, as documented


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fractions": [1.5]}, r"fractions must be in \[0, 1\], got 1.5 at row 0"),
        ({"fractions": [-0.1]}, "fractions must be in"),
        ({"fractions": [math.nan]}, "fractions must be in"),
        ({"odds": [1.0]}, "odds must be finite and above 1, got 1.0"),
        ({"odds": [math.inf]}, "odds must be finite"),
        ({"won": [2]}, "won must be 1 or 0, got 2.0"),
        ({"won": [1, 0]}, r"won must be 1-D with one value per decision \(1\)"),
        ({"fractions": "a"}, "fractions must be numeric"),
        ({"closing_odds": [0.5]}, "closing_odds"),
        ({"bankroll": 0.0}, "bankroll must be finite and positive, got 0.0"),
        ({"bankroll": -5.0}, "bankroll must be"),
        ({"bankroll": math.inf}, "bankroll must be"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"fractions": [0.1], "odds": [2.0], "won": [1], "closing_odds": None}
    args.update(kwargs)
    bankroll = args.pop("bankroll", 1.0)
    with pytest.raises(InvalidInput, match=message):
        backtest_metrics(**args, bankroll=bankroll)  # type: ignore[arg-type]


def test_bankroll_path_refuses_bad_input_too() -> None:
    with pytest.raises(InvalidInput, match="fractions"):
        bankroll_path([2.0], [2.0], [1])
    with pytest.raises(InvalidInput, match="bankroll"):
        bankroll_path([0.1], [2.0], [1], bankroll=math.nan)


def test_best_edge_rows_keeps_the_first_row_on_ties_and_markets_in_first_seen_order() -> None:
    # Market b (rows 0, 1) ties at edge 0.1, market a (rows 2, 3) ties at 0.2, c has one row.
    rows = best_edge_rows(
        [0.5, 0.5, 0.4, 0.6, 1.0], [2.2, 2.2, 3.0, 2.0, 1.5], ["b", "b", "a", "a", "c"]
    )
    assert rows.tolist() == [0, 2, 4]


def test_best_edge_rows_with_interleaved_markets_and_missing_probabilities() -> None:
    # x: rows 0, 2 (row 2 better); y: rows 1, 3 (row 3 better); z: no probabilities at all.
    rows = best_edge_rows(
        [0.3, 0.5, 0.6, 0.6, math.nan, math.nan],
        [2.0, 2.0, 2.0, 2.0, 2.0, 3.0],
        ["x", "y", "x", "y", "z", "z"],
    )
    assert rows.tolist() == [2, 3, 4]
    assert best_edge_rows([], [], []).tolist() == []
    with pytest.raises(InvalidInput, match="one value per row"):
        best_edge_rows([0.5], [2.0, 2.0], ["x", "x"])
