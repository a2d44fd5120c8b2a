"""Evaluation: hand-computed scores, betting metrics on a hand-made sequence, the holdout report."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import roc_auc_score

from betting.errors import InvalidInput
from betting.evaluation import (
    BETTING_METRICS,
    FLAT_STAKE_FRACTION,
    METRIC_AUC,
    METRIC_BETS,
    METRIC_BRIER,
    METRIC_CLV,
    METRIC_ECE,
    METRIC_HIT_RATE,
    METRIC_LOG_GROWTH,
    METRIC_LOG_LOSS,
    METRIC_MAX_DRAWDOWN,
    METRIC_PROFIT,
    METRIC_ROI,
    METRIC_RPS,
    METRIC_TURNOVER,
    REPORT_COLUMNS,
    ROW_BASE_RATE,
    ROW_MARKET,
    ROW_MODEL,
    ROW_TRUTH,
    SCORE_METRICS,
    auc,
    betting_metrics,
    brier,
    ece,
    holdout_report,
    log_loss,
    market_ids_of,
    market_probabilities_from_odds,
    max_drawdown,
    normalise_within_markets,
    rps,
    score_probabilities,
    value_bets,
)
from betting.odds import remove_margin

# Three tiny markets: A and B are 1X2 (positions 0 home, 1 draw, 2 away), C is two-way.
#   A: p = .5 .3 .2, home wins      B: p = .2 .3 .5, draw wins      C: p = .6 .4, away wins
TINY_IDS = ["A", "A", "A", "B", "B", "B", "C", "C"]
TINY_POSITIONS = [0, 1, 2, 0, 1, 2, 0, 1]
TINY_P = [0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 0.6, 0.4]
TINY_WON = [1, 0, 0, 0, 1, 0, 0, 1]


# --- hand-computed scores -----------------------------------------------------------------


def test_log_loss_by_hand() -> None:
    # winners' probabilities .5, .3, .4: (ln 2 + -ln .3 + -ln .4) / 3
    # = (0.693147 + 1.203973 + 0.916291) / 3 = 0.937804
    expected = -(math.log(0.5) + math.log(0.3) + math.log(0.4)) / 3
    assert log_loss(TINY_P, TINY_WON, TINY_IDS) == pytest.approx(expected)
    assert expected == pytest.approx(0.937804, abs=1e-6)


def test_brier_by_hand() -> None:
    # A: (.5-1)^2 + .3^2 + .2^2 = .25 + .09 + .04 = .38
    # B: .2^2 + (.3-1)^2 + .5^2 = .04 + .49 + .25 = .78
    # C: .6^2 + (.4-1)^2 = .36 + .36 = .72          mean = 1.88 / 3
    assert brier(TINY_P, TINY_WON, TINY_IDS) == pytest.approx(1.88 / 3)


def test_rps_by_hand() -> None:
    # A: cum p .5 .8, cum y 1 1 -> (.25 + .04) / 2 = .145
    # B: cum p .2 .5, cum y 0 1 -> (.04 + .25) / 2 = .145
    # C: cum p .6,    cum y 0   -> .36 / 1 = .36            mean = .65 / 3
    assert rps(TINY_P, TINY_WON, TINY_IDS, TINY_POSITIONS) == pytest.approx(0.65 / 3)


def test_ece_by_hand() -> None:
    # bin 2: p .2 .2 (y 0 0) -> |.4 - 0| = .4       bin 3: p .3 .3 (y 0 1) -> |.6 - 1| = .4
    # bin 4: p .4 (y 1)      -> |.4 - 1| = .6       bin 5: p .5 .5 (y 1 0) -> |1 - 1| = 0
    # bin 6: p .6 (y 0)      -> .6
    # ECE = sum n_b/N |mean p - mean y| = sum |sum p - sum y| / N = 2.0 / 8
    assert ece(TINY_P, TINY_WON) == pytest.approx(0.25)


def test_auc_by_hand() -> None:
    # winners .5, .3, .4 against losers .3 .2 .2 .5 .6 (a tie counts half):
    # .5 -> 1 + 1 + 1 + .5 + 0 = 3.5;  .3 -> .5 + 1 + 1 = 2.5;  .4 -> 3.   9 / (3 * 5)
    assert auc(TINY_P, TINY_WON) == pytest.approx(0.6)


def test_score_probabilities_returns_every_score() -> None:
    scores = score_probabilities(TINY_P, TINY_WON, TINY_IDS, TINY_POSITIONS)
    assert list(scores) == list(SCORE_METRICS)
    assert scores[METRIC_LOG_LOSS] == pytest.approx(log_loss(TINY_P, TINY_WON, TINY_IDS))
    assert scores[METRIC_BRIER] == pytest.approx(1.88 / 3)
    assert scores[METRIC_RPS] == pytest.approx(0.65 / 3)
    assert scores[METRIC_ECE] == pytest.approx(0.25)
    assert scores[METRIC_AUC] == pytest.approx(0.6)
    assert math.isnan(score_probabilities(TINY_P, TINY_WON, TINY_IDS)[METRIC_RPS])


def test_scores_do_not_depend_on_row_order() -> None:
    order = [7, 3, 0, 5, 1, 6, 4, 2]
    shuffled = score_probabilities(
        [TINY_P[i] for i in order],
        [TINY_WON[i] for i in order],
        [TINY_IDS[i] for i in order],
        [TINY_POSITIONS[i] for i in order],
    )
    assert shuffled == pytest.approx(
        score_probabilities(TINY_P, TINY_WON, TINY_IDS, TINY_POSITIONS)
    )


def test_perfect_forecast_scores_zero() -> None:
    won = np.array(TINY_WON, dtype=float)
    scores = score_probabilities(won, won, TINY_IDS, TINY_POSITIONS)
    assert scores[METRIC_LOG_LOSS] == 0.0
    assert scores[METRIC_BRIER] == 0.0
    assert scores[METRIC_RPS] == 0.0
    assert scores[METRIC_ECE] == 0.0
    assert scores[METRIC_AUC] == 1.0


def test_uniform_1x2_log_loss_is_ln_3() -> None:
    ids = np.repeat(np.arange(4), 3)
    won = np.tile([1, 0, 0], 4)
    assert log_loss(np.full(12, 1 / 3), won, ids) == pytest.approx(math.log(3))
    # Brier of a uniform 3-way forecast: (2/3)^2 + 2 (1/3)^2 = 6/9
    assert brier(np.full(12, 1 / 3), won, ids) == pytest.approx(6 / 9)


def test_confident_miss_is_clipped_not_infinite() -> None:
    assert log_loss([1.0, 0.0], [0, 1], ["m", "m"]) == pytest.approx(-math.log(1e-15))


# Constantinou & Fenton (2012), "Solving the problem of inadequate scoring rules for assessing
# probabilistic football forecast models": five matches, two forecasters alpha and beta.
CONSTANTINOU_FENTON = [
    # (H, D, A), result position, RPS    arithmetic: sum over k < 3 of (cum p - cum y)^2 / 2
    ((1.0, 0.0, 0.0), 0, 0.0),  # cum 1 1 vs 1 1
    ((0.9, 0.1, 0.0), 0, 0.005),  # (.1^2 + 0) / 2
    ((0.8, 0.1, 0.1), 0, 0.025),  # (.2^2 + .1^2) / 2
    ((0.5, 0.25, 0.25), 0, 0.15625),  # (.5^2 + .25^2) / 2
    ((0.35, 0.3, 0.35), 0, 0.2725),  # (.65^2 + .35^2) / 2
    ((0.6, 0.3, 0.1), 0, 0.085),  # (.4^2 + .1^2) / 2
    ((0.6, 0.3, 0.1), 1, 0.185),  # cum .6 .9 vs 0 1: (.6^2 + .1^2) / 2
    ((0.3, 0.4, 0.3), 1, 0.09),  # cum .3 .7 vs 0 1: (.3^2 + .3^2) / 2
    ((0.5, 0.45, 0.05), 0, 0.12625),  # (.5^2 + .05^2) / 2
    ((0.55, 0.1, 0.35), 0, 0.1625),  # (.45^2 + .35^2) / 2
]


@pytest.mark.parametrize(("forecast", "result", "expected"), CONSTANTINOU_FENTON)
def test_rps_matches_constantinou_fenton(
    forecast: tuple[float, float, float], result: int, expected: float
) -> None:
    won = [1 if k == result else 0 for k in range(3)]
    assert rps(forecast, won, ["m"] * 3, [0, 1, 2]) == pytest.approx(expected)


def test_rps_averages_markets_and_follows_positions_not_row_order() -> None:
    forecasts = [case[0] for case in CONSTANTINOU_FENTON]
    results = [case[1] for case in CONSTANTINOU_FENTON]
    # Rows of each market given away, draw, home: positions put them back in order.
    p = [forecast[k] for forecast in forecasts for k in (2, 1, 0)]
    won = [int(k == r) for r in results for k in (2, 1, 0)]
    ids = np.repeat(np.arange(len(forecasts)), 3)
    positions = [2, 1, 0] * len(forecasts)
    expected = np.mean([case[2] for case in CONSTANTINOU_FENTON])
    assert rps(p, won, ids, positions) == pytest.approx(expected)


def test_ece_is_zero_for_calibrated_bins() -> None:
    # p .25 wins 1 of 4, p .75 wins 3 of 4, p .5 wins 1 of 2: every bin's rate matches.
    p = [0.25] * 4 + [0.75] * 4 + [0.5] * 2
    won = [1, 0, 0, 0, 1, 1, 1, 0, 1, 0]
    assert ece(p, won) == pytest.approx(0.0)
    # One bin: |mean p - rate| = |.5 - .3| weighted by all rows.
    assert ece([0.5] * 10, [1] * 3 + [0] * 7, n_bins=1) == pytest.approx(0.2)


def test_auc_of_a_constant_is_one_half_and_matches_sklearn() -> None:
    assert auc([0.3] * 6, [1, 0, 0, 1, 0, 0]) == 0.5
    assert math.isnan(auc([0.3, 0.4], [0, 0]))
    rng = np.random.default_rng(3)
    p = np.round(rng.random(500), 2)  # rounding makes ties
    won = (rng.random(500) < p).astype(int)
    assert auc(p, won) == pytest.approx(roc_auc_score(won, p))


def test_log_loss_matches_sklearn_on_3_way_markets() -> None:
    rng = np.random.default_rng(4)
    p = rng.dirichlet([2.0, 1.0, 2.0], size=50)
    winners = rng.integers(0, 3, size=50)
    won = np.eye(3)[winners].ravel()
    ids = np.repeat(np.arange(50), 3)
    expected = sklearn_log_loss(winners, p, labels=[0, 1, 2])
    assert log_loss(p.ravel(), won, ids) == pytest.approx(expected)


# --- validation ---------------------------------------------------------------------------


def test_unnormalised_probabilities_are_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"market 'A' sums to 1\.09999"):
        log_loss([0.6, 0.3, 0.2], [1, 0, 0], ["A"] * 3)
    with pytest.raises(InvalidInput, match="in \\[0, 1\\]"):
        brier([1.5, -0.5], [1, 0], ["A"] * 2)
    with pytest.raises(InvalidInput, match="in \\[0, 1\\]"):
        score_probabilities([np.nan, 1.0], [1, 0], ["A"] * 2)


def test_bad_outcomes_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="exactly one winner, market 'A' has 2"):
        brier([0.5, 0.5], [1, 1], ["A", "A"])
    with pytest.raises(InvalidInput, match="exactly one winner, market 'B' has 0"):
        log_loss([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0], ["A", "A", "B", "B"])
    with pytest.raises(InvalidInput, match=r"won must be 1 or 0, got 0\.5 at row 0"):
        ece([0.5, 0.5], [0.5, 1])
    with pytest.raises(InvalidInput, match="one id per row"):
        log_loss([0.5, 0.5], [1, 0], ["A"])


def test_rps_needs_ordered_distinct_positions_and_two_selections() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        rps([0.5, 0.5], [1, 0], ["A", "A"], [0, 0])
    with pytest.raises(InvalidInput, match="2\\+ selections"):
        rps([1.0], [1], ["A"], [0])


# --- market probabilities -----------------------------------------------------------------


def test_normalise_within_markets() -> None:
    # (1, 3) -> (.25, .75); the all-zero market gets uniform thirds; ids need not be contiguous.
    ids = [("e1", "1x2"), ("e2", "1x2"), ("e1", "1x2"), ("e2", "1x2"), ("e2", "1x2")]
    out = normalise_within_markets([1.0, 0.0, 3.0, 0.0, 0.0], ids)
    np.testing.assert_allclose(out, [0.25, 1 / 3, 0.75, 1 / 3, 1 / 3])
    with pytest.raises(InvalidInput, match=r"-0\.1 at row 1"):
        normalise_within_markets([0.2, -0.1], ["A", "A"])
    with pytest.raises(InvalidInput, match="nan at row 0"):
        normalise_within_markets([np.nan, 0.1], ["A", "A"])


def test_market_probabilities_delegate_to_margin_removal() -> None:
    odds = [2.2, 3.4, 3.1, 1.5, 2.6]
    ids = ["m1", "m1", "m1", "m2", "m2"]
    for method in ("proportional", "shin"):
        out = market_probabilities_from_odds(odds, ids, method)
        np.testing.assert_allclose(out[:3], remove_margin(odds[:3], method))
        np.testing.assert_allclose(out[3:], remove_margin(odds[3:], method))
    with pytest.raises(InvalidInput, match=r"above 1\.0"):
        market_probabilities_from_odds([1.0, 2.0], ["m", "m"])


def test_market_ids_of_a_frame() -> None:
    frame = pd.DataFrame({"event_key": ["e1", "e1", "e2", "e1"], "market_key": list("aaab")})
    assert list(market_ids_of(frame)) == [0, 0, 1, 2]


# --- betting ------------------------------------------------------------------------------

# A hand-made holdout of five two-way markets, rows out of time order on purpose.
#   m1 t1: a p .60 @ 2.0 edge +.20 wins    b p .40 @ 2.0 edge -.20
#   m2 t2: a p .50 @ 2.5 edge +.25 loses   b p .50 @ 1.5 edge -.25
#   m3 t3: a p .55 @ 2.0 edge +.10 loses   b p .45 @ 2.4 edge +.08 (a has the better edge)
#   m4 t4: a, b p .50 @ 1.9 edge -.05      (no bet)
#   m5 t5: a p .60 @ 1.5 edge -.10         b p .40 @ 3.0 edge +.20 wins
BETS = pd.DataFrame(
    {
        "market": ["m5", "m5", "m3", "m3", "m1", "m1", "m4", "m4", "m2", "m2"],
        "t": [5, 5, 3, 3, 1, 1, 4, 4, 2, 2],
        "p": [0.6, 0.4, 0.55, 0.45, 0.6, 0.4, 0.5, 0.5, 0.5, 0.5],
        "odds": [1.5, 3.0, 2.0, 2.4, 2.0, 2.0, 1.9, 1.9, 2.5, 1.5],
        "close": [1.6, 2.5, 2.2, 2.3, 1.8, 2.2, 1.9, 1.9, 2.5, 1.5],
        "won": [0, 1, 0, 1, 1, 0, 1, 0, 0, 1],
    }
)


def _bet(**kwargs: Any) -> dict[str, float]:
    return betting_metrics(
        BETS["p"], BETS["odds"], BETS["won"], BETS["market"], BETS["t"], **kwargs
    )


def test_value_bets_mask_uses_the_edge_tolerance() -> None:
    np.testing.assert_array_equal(
        value_bets([0.6, 0.4, 0.55, 0.45], [2.0, 2.0, 2.0, 2.4]), [True, False, True, True]
    )
    # 0.35 * 3.0 - 1 is 0.04999999999999982: it reaches 5%.
    assert value_bets([0.35], [3.0], min_edge=0.05).tolist() == [True]
    assert value_bets([0.35], [3.0], min_edge=0.06).tolist() == [False]


def test_flat_betting_by_hand() -> None:
    # Bets in time order: m1 a +1, m2 a -1, m3 a -1, m5 b +2 (units per unit staked).
    # Stake .01 each: bankroll 1 -> 1.01 -> 1.00 -> 0.99 -> 1.01.
    out = _bet(closing_odds=BETS["close"])
    assert list(out) == list(BETTING_METRICS)
    assert out[METRIC_BETS] == 4
    assert out[METRIC_TURNOVER] == pytest.approx(4 * FLAT_STAKE_FRACTION)
    assert out[METRIC_PROFIT] == pytest.approx(0.01)
    assert out[METRIC_ROI] == pytest.approx(0.25)  # .01 / .04
    assert out[METRIC_HIT_RATE] == pytest.approx(0.5)
    assert out[METRIC_LOG_GROWTH] == pytest.approx(math.log(1.01))
    # peak 1.01 after m1, trough 0.99 after m3: .02 / 1.01
    assert out[METRIC_MAX_DRAWDOWN] == pytest.approx(0.02 / 1.01)
    # odds / close - 1: 2/1.8 - 1 = .1111, 2.5/2.5 - 1 = 0, 2/2.2 - 1 = -.0909, 3/2.5 - 1 = .2
    assert out[METRIC_CLV] == pytest.approx((2 / 1.8 + 1 + 2 / 2.2 + 3 / 2.5) / 4 - 1)
    assert math.isnan(_bet()[METRIC_CLV])


def test_min_edge_drops_the_smaller_edges() -> None:
    # At 15% m3 (best edge .10) is no bet: m1 +1, m2 -1, m5 +2 -> profit .02 on .03.
    out = _bet(min_edge=0.15)
    assert out[METRIC_BETS] == 3
    assert out[METRIC_ROI] == pytest.approx(2 / 3)
    assert out[METRIC_MAX_DRAWDOWN] == pytest.approx(0.01 / 1.01)


def test_quarter_kelly_betting_by_hand() -> None:
    # full Kelly (p o - 1) / (o - 1), quarter of it staked from the current bankroll:
    #   m1: .2 / 1 = .2 -> .05;    bankroll 1 + .05 = 1.05
    #   m2: .25 / 1.5 = 1/6 -> 1/24; stake 1.05 / 24 = .04375, lost: 1.00625
    #   m3: .1 / 1 = .1 -> .025;   stake .02515625, lost: .98109375
    #   m5: .2 / 2 = .1 -> .025;   stake .0245273, won 2x: 1.05 * 23/24 * .975 * 1.05
    out = _bet(staking="kelly", kelly_multiplier=0.25, bankroll=1.0)
    final = 1.05 * (23 / 24) * 0.975 * 1.05
    assert out[METRIC_BETS] == 4
    assert out[METRIC_TURNOVER] == pytest.approx(0.05 + 0.04375 + 0.02515625 + 0.98109375 * 0.025)
    assert out[METRIC_PROFIT] == pytest.approx(final - 1.0)
    assert out[METRIC_LOG_GROWTH] == pytest.approx(math.log(final))
    assert out[METRIC_MAX_DRAWDOWN] == pytest.approx((1.05 - 0.98109375) / 1.05)
    # The bankroll only scales the money, not the ratios.
    big = _bet(staking="kelly", bankroll=1000.0)
    assert big[METRIC_PROFIT] == pytest.approx(1000 * (final - 1.0))
    assert big[METRIC_ROI] == pytest.approx(out[METRIC_ROI])


def test_kelly_survives_runs_beyond_float_range_and_ruin() -> None:
    # 2000 wins at 10.0 with p .99: quarter Kelly .25 * 8.9 / 9 stakes ~22%, bankroll x ~3.2 per
    # bet, far past the largest float; the ratios stay finite, only the money overflows.
    n = 2000
    out = betting_metrics(
        [0.99, 0.01] * n,
        [10.0, 1.05] * n,
        [1, 0] * n,
        np.repeat(np.arange(n), 2),
        np.repeat(np.arange(n), 2),
        staking="kelly",
    )
    assert out[METRIC_ROI] == pytest.approx(9.0)
    assert out[METRIC_LOG_GROWTH] == pytest.approx(n * math.log1p(0.25 * 8.9 / 9 * 9))
    assert out[METRIC_MAX_DRAWDOWN] == 0.0
    assert out[METRIC_PROFIT] == math.inf
    # Full Kelly on a "certain" loser stakes everything: ruin.
    ruin = betting_metrics(
        [1.0, 0.0], [2.0, 2.0], [0, 1], ["m", "m"], [0, 0], staking="kelly", kelly_multiplier=1.0
    )
    assert ruin[METRIC_LOG_GROWTH] == -math.inf
    assert ruin[METRIC_PROFIT] == -1.0
    assert ruin[METRIC_MAX_DRAWDOWN] == 1.0
    assert ruin[METRIC_ROI] == -1.0


def test_no_bets_gives_zero_count_and_nan_ratios() -> None:
    for staking in ("flat", "kelly"):
        out = _bet(min_edge=0.5, staking=staking, closing_odds=BETS["close"])
        assert out[METRIC_BETS] == 0
        assert out[METRIC_TURNOVER] == 0.0
        assert out[METRIC_PROFIT] == 0.0
        assert out[METRIC_LOG_GROWTH] == 0.0
        assert out[METRIC_MAX_DRAWDOWN] == 0.0
        for ratio in (METRIC_ROI, METRIC_CLV, METRIC_HIT_RATE):
            assert math.isnan(out[ratio])


def test_betting_metrics_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match="'martingale'"):
        _bet(staking="martingale")
    with pytest.raises(InvalidInput, match="bankroll"):
        _bet(bankroll=0.0)
    with pytest.raises(InvalidInput, match="closing_odds must be finite"):
        _bet(closing_odds=[1.0] * len(BETS))
    with pytest.raises(InvalidInput, match="starts_at must not be missing"):
        betting_metrics([0.5, 0.5], [2.2, 2.2], [1, 0], ["m", "m"], [pd.NaT, pd.NaT])


def test_max_drawdown() -> None:
    assert max_drawdown([1.0, 2.0, 1.0, 1.5, 0.5, 3.0]) == pytest.approx(0.75)
    assert max_drawdown([1.0]) == 0.0
    with pytest.raises(InvalidInput, match="positive bankroll"):
        max_drawdown([0.0, 1.0])


# --- simulated-like data and the holdout report -------------------------------------------


def _simulated_holdout(n_markets: int = 3000, seed: int = 11) -> pd.DataFrame:
    """1X2 markets with a known truth, noisy bookmaker prices with a 5% margin, and outcomes."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet([4.0, 2.5, 3.0], size=n_markets)
    noisy = truth * np.exp(rng.normal(0.0, 0.25, size=truth.shape))
    book = noisy / noisy.sum(axis=1, keepdims=True)
    closing = 1.0 / (book * 1.05)
    opening = 1.0 / (book * np.exp(rng.normal(0.0, 0.1, size=truth.shape)) * 1.04)
    winners = (rng.random(n_markets)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    model = 0.5 * truth + 0.5 * book  # a model halfway between the market and the truth
    return pd.DataFrame(
        {
            "event_key": np.repeat([f"e{i}" for i in range(n_markets)], 3),
            "market_key": "1x2",
            "position": np.tile([0, 1, 2], n_markets),
            "starts_at": np.repeat(
                pd.date_range("2024-01-01", periods=n_markets, freq="h", tz="UTC"), 3
            ),
            "won": np.eye(3)[winners].ravel(),
            "true_probability": truth.ravel(),
            "model": model.ravel(),
            "open_best": np.maximum(opening.ravel(), 1.01),
            "close_mean": np.maximum(closing.ravel(), 1.01),
        }
    )


def test_truth_scores_better_than_margin_free_odds() -> None:
    frame = _simulated_holdout()
    ids = market_ids_of(frame)
    market = market_probabilities_from_odds(frame["close_mean"], ids)
    truth = score_probabilities(frame["true_probability"], frame["won"], ids, frame["position"])
    odds = score_probabilities(market, frame["won"], ids, frame["position"])
    for metric in (METRIC_LOG_LOSS, METRIC_BRIER, METRIC_RPS):
        assert truth[metric] < odds[metric]
    assert truth[METRIC_ECE] < 0.03


def test_holdout_report_side_by_side() -> None:
    frame = _simulated_holdout()
    report = holdout_report(
        frame, "model", odds_col="open_best", closing_col="close_mean", true_col="true_probability"
    )
    assert list(report.index) == [ROW_MODEL, ROW_MARKET, ROW_TRUTH, ROW_BASE_RATE]
    assert list(report.columns) == list(REPORT_COLUMNS)
    ids = market_ids_of(frame)
    model_scores = score_probabilities(frame["model"], frame["won"], ids, frame["position"])
    assert report.loc[ROW_MODEL, list(SCORE_METRICS)].to_dict() == pytest.approx(model_scores)
    losses = report[METRIC_LOG_LOSS]
    assert losses[ROW_TRUTH] < losses[ROW_MODEL] < losses[ROW_MARKET] < losses[ROW_BASE_RATE]
    # Betting on the truth at the opening prices is the ceiling: it makes money.
    assert report.loc[ROW_TRUTH, METRIC_BETS] > 100
    assert report.loc[ROW_TRUTH, METRIC_ROI] > 0.0
    assert report.loc[ROW_TRUTH, METRIC_LOG_GROWTH] > 0.0
    # The market's own margin-free probabilities never find value at the closing prices.
    at_close = holdout_report(frame, "model", odds_col="close_mean", closing_col="close_mean")
    assert at_close.loc[ROW_MARKET, METRIC_BETS] == 0
    assert math.isnan(at_close.loc[ROW_MARKET, METRIC_ROI])
    assert at_close.loc[ROW_MODEL, METRIC_CLV] == pytest.approx(0.0)


def test_holdout_report_leaves_out_incomplete_markets_and_missing_truth() -> None:
    frame = _simulated_holdout(n_markets=200)
    frame.loc[0:2, "won"] = np.nan  # e0 unsettled
    frame.loc[4, "close_mean"] = np.nan  # e1 lacks one closing price
    report = holdout_report(frame, "model", odds_col="open_best", closing_col="close_mean")
    assert list(report.index) == [ROW_MODEL, ROW_MARKET, ROW_BASE_RATE]
    rest = frame.iloc[6:]
    ids = market_ids_of(rest)
    expected = log_loss(rest["model"], rest["won"], ids)
    assert report.loc[ROW_MODEL, METRIC_LOG_LOSS] == pytest.approx(expected)
    with pytest.raises(InvalidInput, match="lacks column"):
        holdout_report(frame, "nope", odds_col="open_best", closing_col="close_mean")
