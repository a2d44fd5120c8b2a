"""Odds maths: hand-computed examples, Shin against published values, and properties."""

from __future__ import annotations

import dataclasses
import math
import random
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betting.errors import InvalidInput
from betting.odds import (
    EDGE_TOLERANCE,
    TIER_A_MIN_EDGE,
    TIER_B_MIN_EDGE,
    TIER_C_MIN_EDGE,
    MarginMethod,
    Recommendation,
    SignalTier,
    edge,
    expected_value,
    fair_odds,
    fractional_kelly,
    implied_probabilities,
    kelly_fraction,
    kelly_stake,
    minimum_acceptable_odds,
    overround,
    recommend,
    remove_margin,
    remove_margin_grouped,
    remove_margin_proportional,
    remove_margin_shin,
    signal_tier,
    signal_tiers,
)

PROPERTY = settings(max_examples=100, deadline=None)
METHODS: list[MarginMethod] = ["proportional", "shin"]


@st.composite
def markets(
    draw: st.DrawFn, min_booksum: float = 0.7, max_booksum: float = 1.3, max_size: int = 20
) -> np.ndarray:
    """Decimal prices of a 2- to max_size-way market whose implied probabilities sum to a booksum.

    Integer weights of 5..100 make the selections' strengths either equal or at least 1% apart,
    and keep every implied probability below 0.99.
    """
    weights = draw(st.lists(st.integers(5, 100), min_size=2, max_size=max_size))
    total, top = sum(weights), max(weights)
    booksum = draw(st.floats(min_booksum, min(max_booksum, 0.99 * total / top)))
    return np.array([total / (booksum * w) for w in weights])


def shin_forward(probs: np.ndarray, z: float | np.ndarray) -> np.ndarray:
    """Shin's (1993) bookmaker prices: implied_i = sqrt(z p_i + (1-z) p_i^2) * sum_j (same)."""
    root = np.sqrt(z * probs + (1.0 - z) * probs**2)
    return root * root.sum()


# --- implied probabilities and proportional margin removal -------------------------------------


def test_three_way_market_by_hand() -> None:
    odds = [2.0, 3.6, 4.2]
    # implied: 1/2 = .5, 1/3.6 = .2778, 1/4.2 = .2381; sum = 64/63 = 1.015873
    np.testing.assert_allclose(implied_probabilities(odds), [0.5, 5 / 18, 5 / 21])
    assert overround(odds) == pytest.approx(1 / 63)  # .0159
    # proportional: each implied * 63/64 -> .4921875, .2734375, .234375
    np.testing.assert_allclose(
        remove_margin_proportional(odds), [0.4921875, 0.2734375, 0.234375], rtol=1e-12
    )
    np.testing.assert_allclose(remove_margin(odds), remove_margin_proportional(odds))


def test_scalars_give_floats_and_arrays_give_arrays() -> None:
    assert isinstance(implied_probabilities(4.0), float)
    assert implied_probabilities(4.0) == 0.25
    assert isinstance(expected_value(0.5, 2.2), float)
    assert isinstance(expected_value(np.array([0.5, 0.6]), 2.2), np.ndarray)
    assert isinstance(overround([2.0, 2.0]), float)
    assert isinstance(kelly_fraction(pd.Series([0.5, 0.6]), pd.Series([2.2, 2.0])), np.ndarray)


def test_two_dimensional_input_is_one_market_per_row() -> None:
    rows = np.array([[2.0, 3.6, 4.2], [2.6, 2.4, 4.3], [3.0, 3.0, 3.0]])
    # 3.0 x 3: booksum exactly 1, overround 0
    np.testing.assert_allclose(overround(rows), [1 / 63, 1 / 2.6 + 1 / 2.4 + 1 / 4.3 - 1, 0])
    probs, z = remove_margin_shin(rows, return_z=True)
    for i, row in enumerate(rows):
        np.testing.assert_allclose(remove_margin_proportional(rows)[i], remove_margin(row))
        row_probs, row_z = remove_margin_shin(row, return_z=True)
        np.testing.assert_allclose(probs[i], row_probs, rtol=1e-12)
        assert np.asarray(z)[i] == pytest.approx(row_z, abs=1e-15)


# --- Shin --------------------------------------------------------------------------------------


def test_shin_matches_published_three_way_example() -> None:
    # mberk/shin README and tests (Jullien & Salanie iteration): [2.6, 2.4, 4.3] ->
    # p = .3729941, .4047794, .2222265 with z = .01694251
    probs, z = remove_margin_shin([2.6, 2.4, 4.3], return_z=True)
    np.testing.assert_allclose(probs, [0.3729941, 0.4047794, 0.2222265], atol=1e-7)
    assert z == pytest.approx(0.01694251, abs=1e-8)
    # Second method: Shin's forward formula gives back the bookmaker's implied probabilities.
    np.testing.assert_allclose(shin_forward(probs, z), [1 / 2.6, 1 / 2.4, 1 / 4.3], rtol=1e-12)


def test_shin_two_way_is_additive_removal() -> None:
    # [1.5, 2.74]: implied .666667 + .364964 = 1.031630; half the overround is .015815, so
    # p = .666667 - .015815 = .650852 and .364964 - .015815 = .349148; the mberk/shin README
    # publishes these and z = .0317273 (from the two-way closed form of Strumbelj 2014).
    probs, z = remove_margin_shin([1.5, 2.74], return_z=True)
    half = (1 / 1.5 + 1 / 2.74 - 1) / 2
    np.testing.assert_allclose(probs, [1 / 1.5 - half, 1 / 2.74 - half], rtol=1e-12)
    np.testing.assert_allclose(probs, [0.6508515815085157, 0.3491484184914841], rtol=1e-12)
    assert z == pytest.approx(0.03172728540646625, rel=1e-9)


def test_shin_by_hand_market_reproduces_its_odds() -> None:
    odds = np.array([2.0, 3.6, 4.2])
    probs, z = remove_margin_shin(odds, return_z=True)
    # z = .0079441 gives p = .494073, .272725, .233202: the forward formula at that z returns
    # .5, .2778, .2381, the implied probabilities (checked below to 1e-12).
    assert z == pytest.approx(0.0079441, abs=1e-7)
    np.testing.assert_allclose(probs, [0.494073, 0.272725, 0.233202], atol=1e-6)
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(shin_forward(probs, z), 1 / odds, rtol=1e-12)
    # favourite up, longshot down relative to proportional (.4921875, .234375)
    assert probs[0] > 0.4921875 and probs[2] < 0.234375


@pytest.mark.parametrize("odds", [[2.1, 2.1], [2.0, 4.0, 4.0], [1.5], [4.0, 4.0, 4.0, 40.0]])
def test_shin_without_margin_degrades_to_proportional(odds: list[float]) -> None:
    # booksums: 2/2.1 = .952; .5 + .25 + .25 = 1 exactly; 1/1.5 = .667 (one runner: p = 1);
    # .75 + .025 = .775
    assert overround(odds) <= 0
    probs, z = remove_margin_shin(odds, return_z=True)
    assert z == 0.0
    np.testing.assert_allclose(probs, remove_margin_proportional(odds), rtol=1e-15)
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    "odds",
    [
        [1.01, 50.0],  # a near-certain favourite
        [1.0001, 1.0001],  # booksum ~2: z ~ .9998
        [1.02, 1.02, 1.02],  # z ~ .97
        [1.9999, 2.0],  # overround .00005: z ~ .000025
        [1.1] + [200.0] * 30,  # a 31-runner race
        [1.0000001, 1e6],
    ],
)
def test_shin_on_extreme_markets(odds: list[float]) -> None:
    probs, z = remove_margin_shin(odds, return_z=True)
    assert 0 < z < 1
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(shin_forward(probs, z), 1 / np.array(odds), rtol=1e-12)


@PROPERTY
@given(markets(min_booksum=1.0001))
def test_shin_probabilities_reproduce_the_odds(odds: np.ndarray) -> None:
    probs, z = remove_margin_shin(odds, return_z=True)
    assert 0 < z < 1
    np.testing.assert_allclose(shin_forward(probs, z), 1 / odds, rtol=1e-9)


@PROPERTY
@given(markets(min_booksum=0.8, max_size=2))
def test_shin_two_way_equals_additive(odds: np.ndarray) -> None:
    # Without a margin both are proportional; with one, Shin subtracts half the overround.
    if overround(odds) <= 0:
        np.testing.assert_allclose(remove_margin_shin(odds), remove_margin_proportional(odds))
        return
    half = overround(odds) / 2
    np.testing.assert_allclose(remove_margin_shin(odds), 1 / odds - half, rtol=1e-9, atol=1e-15)


@PROPERTY
@given(markets())
def test_shin_moves_probability_from_longshots_to_favourites(odds: np.ndarray) -> None:
    shin, proportional = remove_margin_shin(odds), remove_margin_proportional(odds)
    favourite, longshot = np.argmin(odds), np.argmax(odds)
    assert shin[favourite] >= proportional[favourite] - 1e-12
    assert shin[longshot] <= proportional[longshot] + 1e-12
    # More strongly, shin / proportional never falls as the implied probability rises.
    order = np.argsort(1 / odds, kind="stable")
    assert np.all(np.diff((shin / proportional)[order]) >= -1e-12)


# --- properties of both methods ----------------------------------------------------------------


@PROPERTY
@given(markets(), st.sampled_from(METHODS))
def test_margin_removal_sums_to_one_and_keeps_the_order(
    odds: np.ndarray, method: MarginMethod
) -> None:
    probs = remove_margin(odds, method)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(probs > 0)
    shorter = odds[:, None] < odds[None, :]  # i is more of a favourite than j
    assert np.all((probs[:, None] > probs[None, :])[shorter])
    same = odds[:, None] == odds[None, :]
    assert np.all((probs[:, None] == probs[None, :])[same])


@PROPERTY
@given(markets(min_booksum=1.0001), st.sampled_from(METHODS))
def test_fair_odds_after_margin_removal_are_longer(odds: np.ndarray, method: MarginMethod) -> None:
    assert overround(odds) > 0
    assert np.all(fair_odds(remove_margin(odds, method)) >= odds)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(markets(max_size=8), min_size=1, max_size=5), st.sampled_from(METHODS), st.randoms()
)
def test_grouped_removal_matches_market_by_market(
    market_list: list[np.ndarray], method: MarginMethod, rng: random.Random
) -> None:
    rows = [(f"m{i}", price) for i, m in enumerate(market_list) for price in m]
    rng.shuffle(rows)
    keys = [k for k, _ in rows]
    prices = pd.Series([p for _, p in rows], index=pd.RangeIndex(100, 100 + len(rows)))
    grouped = remove_margin_grouped(prices, keys, method)
    assert isinstance(grouped, pd.Series)
    assert grouped.index.equals(prices.index)
    key_array, price_array, prob_array = np.array(keys), prices.to_numpy(), grouped.to_numpy()
    for i in range(len(market_list)):
        mine = key_array == f"m{i}"
        expected = remove_margin(price_array[mine], method)
        np.testing.assert_allclose(prob_array[mine], expected, rtol=1e-12)


def test_grouped_removal_by_hand_with_arrays() -> None:
    prices = np.array([2.0, 1.9, 3.6, 1.9, 4.2])
    keys = np.array([7, 8, 7, 8, 7])
    probs = remove_margin_grouped(prices, keys)
    assert isinstance(probs, np.ndarray)
    # market 7 is the hand-computed 2.0/3.6/4.2 market; market 8 is two equal prices: .5 each
    np.testing.assert_allclose(probs, [0.4921875, 0.5, 0.2734375, 0.5, 0.234375], rtol=1e-12)
    shin = remove_margin_grouped(prices, keys, "shin")
    np.testing.assert_allclose(shin[[0, 2, 4]], remove_margin_shin([2.0, 3.6, 4.2]), rtol=1e-12)
    np.testing.assert_allclose(shin[[1, 3]], [0.5, 0.5], rtol=1e-12)


# --- value and staking -------------------------------------------------------------------------


def test_value_and_kelly_by_hand() -> None:
    # p = .55 at 2.0: EV = .55 * 2 - 1 = .10; full Kelly = .10 / (2 - 1) = .10
    assert expected_value(0.55, 2.0) == pytest.approx(0.10)
    assert edge(0.55, 2.0) == expected_value(0.55, 2.0)
    assert kelly_fraction(0.55, 2.0) == pytest.approx(0.10)
    # p = .4 at 3.0: EV = 1.2 - 1 = .2; Kelly = .2 / 2 = .1; quarter Kelly = .025
    assert kelly_fraction(0.4, 3.0) == pytest.approx(0.10)
    assert fractional_kelly(0.4, 3.0, 0.25) == pytest.approx(0.025)
    # p = .3 at 3.0: EV = -.1, no bet
    assert kelly_fraction(0.3, 3.0) == 0.0
    # p = .6 at 2.0: Kelly .2; half Kelly of 1000 = 100, capped at 5% = 50
    assert kelly_stake(1000, 0.6, 2.0) == pytest.approx(200.0)
    assert kelly_stake(1000, 0.6, 2.0, fraction=0.5) == pytest.approx(100.0)
    assert kelly_stake(1000, 0.6, 2.0, fraction=0.5, max_fraction=0.05) == pytest.approx(50.0)
    # a certain winner: Kelly says stake everything, never more
    assert kelly_fraction(1.0, 1.5) == 1.0
    assert fair_odds(0.25) == 4.0


def test_minimum_acceptable_odds_by_hand() -> None:
    # p = .5: fair 2.0; with a 2% edge (1 + .02) / .5 = 2.04; with 10%, 1.1 / .5 = 2.2
    assert minimum_acceptable_odds(0.5) == pytest.approx(2.0)
    assert minimum_acceptable_odds(0.5, 0.02) == pytest.approx(2.04)
    assert minimum_acceptable_odds(0.5, TIER_A_MIN_EDGE) == pytest.approx(2.2)
    assert expected_value(0.5, 2.04) == pytest.approx(0.02)


@PROPERTY
@given(st.floats(0.0, 1.0), st.floats(1.0, 1000.0, exclude_min=True))
def test_kelly_is_zero_exactly_when_ev_is_not_positive(p: float, odds: float) -> None:
    kelly = kelly_fraction(p, odds)
    assert 0.0 <= kelly <= 1.0
    assert (kelly == 0.0) == (expected_value(p, odds) <= 0.0)
    assert fractional_kelly(p, odds, 0.5) == pytest.approx(kelly / 2)


@PROPERTY
@given(st.floats(0.01, 1.0), st.floats(-0.5, 1.0))
def test_minimum_acceptable_odds_gives_the_edge(p: float, min_edge: float) -> None:
    odds = minimum_acceptable_odds(p, min_edge)
    if odds > 1.0:
        assert expected_value(p, odds) == pytest.approx(min_edge, abs=1e-12)


# --- tiers and recommendations -----------------------------------------------------------------


def test_tier_boundaries() -> None:
    assert (TIER_A_MIN_EDGE, TIER_B_MIN_EDGE, TIER_C_MIN_EDGE) == (0.10, 0.05, 0.02)
    cases = [
        (0.10, SignalTier.A),
        (0.10 - 1e-6, SignalTier.B),
        (0.05, SignalTier.B),
        (0.05 - 1e-6, SignalTier.C),
        (0.02, SignalTier.C),
        (0.02 - 1e-6, SignalTier.D),
        (0.0, SignalTier.D),
        (-1.0, SignalTier.D),
        (3.0, SignalTier.A),
    ]
    for value, tier in cases:
        assert signal_tier(value) is tier, value
    edges = [value for value, _ in cases]
    assert signal_tiers(edges).tolist() == [tier.value for _, tier in cases]
    # .35 * 3.0 - 1 is .04999999999999982 in binary floating point; it is still a 5% edge
    noisy = 0.35 * 3.0 - 1
    assert noisy < 0.05 and noisy > 0.05 - EDGE_TOLERANCE
    assert signal_tier(expected_value(0.35, 3.0)) is SignalTier.B


@PROPERTY
@given(st.lists(st.floats(-1.0, 2.0), max_size=30))
def test_vectorised_tiers_match_scalar(edges: list[float]) -> None:
    assert signal_tiers(np.array(edges)).tolist() == [signal_tier(e).value for e in edges]


def test_recommendation_by_hand() -> None:
    rec = recommend(0.55, 2.0, bankroll=1000.0)
    # EV .10 (tier A); full Kelly .10; quarter Kelly of 1000 = 25; fair 1/.55 = 1.8182;
    # minimum acceptable (1 + .02) / .55 = 1.8545
    assert rec.tier is SignalTier.A and rec.is_bet
    assert rec.expected_value == pytest.approx(0.10)
    assert rec.kelly_fraction == pytest.approx(0.10)
    assert rec.stake == pytest.approx(25.0)
    assert rec.fair_odds == pytest.approx(1.8181818)
    assert rec.minimum_acceptable_odds == pytest.approx(1.8545454)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.stake = 0.0  # type: ignore[misc]


def test_recommendation_without_a_bet() -> None:
    # .5 at 2.03: EV .015, tier D, no stake although full Kelly is .015 / 1.03 > 0
    rec = recommend(0.5, 2.03)
    assert rec.tier is SignalTier.D and rec.stake == 0.0 and not rec.is_bet
    assert rec.kelly_fraction == pytest.approx(0.015 / 1.03)
    # .5 at 2.06: EV .03 is tier C, but below a 5% min_edge: tier shown, stake zero
    rec = recommend(0.5, 2.06, min_edge=0.05)
    assert rec.tier is SignalTier.C and rec.stake == 0.0
    assert rec.minimum_acceptable_odds == pytest.approx(2.1)
    assert isinstance(recommend(0.5, 2.5), Recommendation)


@PROPERTY
@given(st.floats(0.0, 1.0, exclude_min=True), st.floats(1.0, 100.0, exclude_min=True))
def test_recommendation_agrees_with_the_element_functions(p: float, odds: float) -> None:
    rec = recommend(p, odds, bankroll=200.0)
    assert rec.expected_value == expected_value(p, odds)
    assert rec.kelly_fraction == kelly_fraction(p, odds)
    assert rec.tier is signal_tier(rec.expected_value)
    assert rec.is_bet == (rec.tier is not SignalTier.D)
    expected_stake = kelly_stake(200.0, p, odds, fraction=0.25) if rec.is_bet else 0.0
    assert rec.stake == pytest.approx(expected_stake, rel=1e-12)
    assert rec.minimum_acceptable_odds == pytest.approx(minimum_acceptable_odds(p, 0.02))


# --- validation --------------------------------------------------------------------------------

BAD_ODDS = st.sampled_from([1.0, 0.5, 0.0, -2.0, math.nan, math.inf, -math.inf])
BAD_PROBABILITIES = st.sampled_from([-0.1, 1.0001, 2.0, math.nan, math.inf])


@PROPERTY
@given(BAD_ODDS, st.integers(0, 3))
def test_bad_odds_raise_naming_the_value(bad: float, where: int) -> None:
    market = [2.0, 3.0, 4.0, 5.0]
    market[where] = bad
    calls = [
        lambda: implied_probabilities(market),
        lambda: overround(market),
        lambda: remove_margin_proportional(market),
        lambda: remove_margin_shin(market),
        lambda: remove_margin_grouped(market, [1, 1, 2, 2], "shin"),
        lambda: expected_value(0.5, bad),
        lambda: kelly_fraction(0.5, bad),
        lambda: kelly_stake(100.0, 0.5, bad),
        lambda: recommend(0.5, bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match=re.escape(repr(bad))):
            call()


@PROPERTY
@given(BAD_PROBABILITIES)
def test_bad_probabilities_raise_naming_the_value(bad: float) -> None:
    calls = [
        lambda: fair_odds(bad),
        lambda: expected_value([0.5, bad], 2.0),
        lambda: edge(bad, 2.0),
        lambda: kelly_fraction(bad, 2.0),
        lambda: fractional_kelly(bad, 2.0, 0.5),
        lambda: minimum_acceptable_odds(bad),
        lambda: recommend(bad, 2.0),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="probability"):
            call()
        with pytest.raises(InvalidInput, match=re.escape(repr(bad))):
            call()


def test_other_bad_input_raises() -> None:
    with pytest.raises(InvalidInput, match=r"got 0\.0"):
        fair_odds(0.0)  # no fair price for an impossible outcome
    with pytest.raises(InvalidInput, match="'power'"):
        remove_margin([2.0, 2.0], "power")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="shape"):
        remove_margin([])
    with pytest.raises(InvalidInput, match="shape"):
        overround(2.0)
    with pytest.raises(InvalidInput, match="same length"):
        remove_margin_grouped([2.0, 2.0], [1])
    with pytest.raises(InvalidInput, match="missing"):
        remove_margin_grouped(pd.Series([2.0, 2.0]), pd.Series(["a", None]))
    with pytest.raises(InvalidInput, match="numeric"):
        implied_probabilities(["2.0", "x"])
    with pytest.raises(InvalidInput, match="fraction"):
        fractional_kelly(0.6, 2.0, 1.5)
    with pytest.raises(InvalidInput, match="max_fraction"):
        kelly_stake(100.0, 0.6, 2.0, max_fraction=-0.1)
    with pytest.raises(InvalidInput, match="bankroll"):
        kelly_stake(-1.0, 0.6, 2.0)
    with pytest.raises(InvalidInput, match="min_edge"):
        minimum_acceptable_odds(0.5, -1.0)
    with pytest.raises(InvalidInput, match="edge"):
        signal_tier(math.nan)
    with pytest.raises(InvalidInput, match="single"):
        recommend(np.array([0.5, 0.6]), 2.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="kelly_multiplier"):
        recommend(0.6, 2.0, kelly_multiplier=2.0)


def test_recommend_all_equals_recommend_one_by_one() -> None:
    from betting.odds import recommend_all

    rng = np.random.default_rng(3)
    p = rng.uniform(0.02, 0.9, 200)
    odds = rng.uniform(1.05, 30.0, 200)
    many = recommend_all(p, odds, bankroll=250.0, kelly_multiplier=0.5, min_edge=0.04)
    for i in range(len(p)):
        assert many[i] == recommend(p[i], odds[i], bankroll=250.0, kelly_multiplier=0.5,
                                    min_edge=0.04)  # fmt: skip
    assert {str(t) for t in many.tier} >= {"A", "D"}
    with pytest.raises(InvalidInput, match="shape"):
        recommend_all([0.5, 0.5], [2.0])
