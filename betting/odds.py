"""Odds maths: implied probabilities, margin removal, value, Kelly staking and signal tiers.

This is the one place betml's betting rules live; serving handlers, the RL environment, the
backtests and the feature code all call these functions rather than re-deriving them.

Conventions:
    * Odds are decimal prices: finite and above 1.0 (a price of 3.0 returns 3 units per unit
      staked, stake included).
    * Probabilities are in [0, 1]; where a division needs it (fair odds, minimum acceptable odds,
      a recommendation) they must be in (0, 1].
    * Element-wise functions accept floats or array-likes (lists, numpy arrays, pandas Series),
      broadcast numpy-style, and return a float for scalar input and a numpy array otherwise.
    * Market functions (``overround``, ``remove_margin*``) take the prices of one market as a 1-D
      sequence, or several markets of the same size as the rows of a 2-D array. Markets of mixed
      sizes go through :func:`remove_margin_grouped`.
    * Bad input raises :class:`betting.errors.InvalidInput` naming the bad value.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import pandas as pd

from betting.errors import InvalidInput

ArrayLike: TypeAlias = float | Sequence[float] | np.ndarray | pd.Series
FloatOrArray: TypeAlias = float | np.ndarray
MarginMethod: TypeAlias = Literal["proportional", "shin"]
MARGIN_METHODS: tuple[str, ...] = ("proportional", "shin")

#: Lowest edge (EV per unit stake) of each signal tier; below TIER_C_MIN_EDGE a selection is D.
TIER_A_MIN_EDGE = 0.10
TIER_B_MIN_EDGE = 0.05
TIER_C_MIN_EDGE = 0.02
#: Edges this close below a threshold count as reaching it, so that binary floating-point noise
#: does not demote a bet (0.35 * 3.0 - 1 is 0.04999999999999982, a B bet).
EDGE_TOLERANCE = 1e-9

#: Shin's z is solved to this absolute tolerance, in at most this many steps (Newton usually
#: needs fewer than 10; pure bisection would need about 50).
_SHIN_Z_TOLERANCE = 1e-15
_SHIN_MAX_STEPS = 100


class SignalTier(StrEnum):
    """How strong a value signal is, from its edge: A >= 10%, B >= 5%, C >= 2%, D no bet."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


# --- validation ---------------------------------------------------------------------------


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{name} must be numeric, got {reprlib.repr(value)}") from e


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    if arr.ndim == 0:
        return repr(float(arr))
    where = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
    index = where[0] if arr.ndim == 1 else tuple(int(i) for i in where)
    count = int(bad.sum())
    more = f" ({count} bad values in all)" if count > 1 else ""
    return f"{float(arr[where])!r} at index {index}{more}"


def _check(arr: np.ndarray, ok: np.ndarray, name: str, rule: str) -> np.ndarray:
    if not np.all(ok):
        raise InvalidInput(f"{name} must be {rule}, got {_first_bad(arr, ~ok)}")
    return arr


def _odds(value: Any, name: str = "odds") -> np.ndarray:
    arr = _as_float_array(value, name)
    return _check(arr, np.isfinite(arr) & (arr > 1.0), name, "finite decimal prices above 1.0")


def _probability(value: Any, name: str = "probability", *, positive: bool = False) -> np.ndarray:
    arr = _as_float_array(value, name)
    low_ok = arr > 0.0 if positive else arr >= 0.0
    rule = "in (0, 1]" if positive else "in [0, 1]"
    return _check(arr, low_ok & (arr <= 1.0), name, rule)


def _unit_fraction(value: Any, name: str) -> np.ndarray:
    arr = _as_float_array(value, name)
    return _check(arr, (arr >= 0.0) & (arr <= 1.0), name, "in [0, 1]")


def _edge_value(value: Any, name: str) -> np.ndarray:
    arr = _as_float_array(value, name)
    return _check(arr, np.isfinite(arr) & (arr >= -1.0), name, "finite and at least -1")


def _bankroll(value: Any) -> np.ndarray:
    arr = _as_float_array(value, "bankroll")
    return _check(arr, np.isfinite(arr) & (arr >= 0.0), "bankroll", "finite and >= 0")


def _market(odds: ArrayLike) -> np.ndarray:
    arr = _odds(odds)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise InvalidInput(
            "odds of a market must be a non-empty 1-D sequence (or a 2-D array, one market "
            f"per row), got shape {arr.shape}"
        )
    return arr


def _single(arr: np.ndarray, name: str) -> float:
    if arr.ndim != 0:
        raise InvalidInput(f"{name} must be a single number, got an array of shape {arr.shape}")
    return float(arr)


def _out(arr: np.ndarray) -> FloatOrArray:
    return float(arr) if arr.ndim == 0 else arr


# --- implied probabilities and margin -----------------------------------------------------


def implied_probabilities(odds: ArrayLike) -> FloatOrArray:
    """The bookmaker's implied probability of each price, 1 / odds (margin included)."""
    return _out(1.0 / _odds(odds))


def overround(odds: ArrayLike) -> FloatOrArray:
    """The bookmaker's margin of a market: the implied probabilities' sum minus 1.

    Returns a float for one market (1-D), an array with one value per row for a 2-D array.
    """
    return _out((1.0 / _market(odds)).sum(axis=-1) - 1.0)


def remove_margin_proportional(odds: ArrayLike) -> np.ndarray:
    """Margin-free probabilities by normalising the implied probabilities to sum to 1."""
    implied = 1.0 / _market(odds)
    return implied / implied.sum(axis=-1, keepdims=True)


def _shin_probabilities(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shin's probabilities at z and their derivatives in z, for a = implied^2 / booksum."""
    # Shin's p = (sqrt(z^2 + 4(1 - z) a) - z) / (2(1 - z)), written as 2a / (root + z) to avoid
    # cancellation for longshots and z near 1; dp/dz = -p * (1 + (z - 2a) / root) / (root + z).
    root = np.sqrt(z * z + 4.0 * (1.0 - z) * a)
    probs = 2.0 * a / (root + z)
    return probs, -probs * (1.0 + (z - 2.0 * a) / root) / (root + z)


def _shin_by_group(
    implied: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shin probabilities and z for flat implied probabilities of markets 0..n_groups-1.

    The probabilities' sum falls strictly as z rises (from sqrt(booksum) at z = 0 to
    sum(implied^2) / booksum < 1 at z = 1), so every market with booksum > 1 has one root in
    (0, 1). All markets are solved at once by Newton steps kept inside a shrinking bracket
    (bisecting when a step would leave it). Markets with booksum <= 1 get proportional
    probabilities and z = 0.
    """
    booksum = np.bincount(group, weights=implied, minlength=n_groups)
    a = implied * implied / booksum[group]
    low, high, z = np.zeros(n_groups), np.ones(n_groups), np.zeros(n_groups)
    for _ in range(_SHIN_MAX_STEPS):
        probs, slopes = _shin_probabilities(a, z[group])
        excess = np.bincount(group, weights=probs, minlength=n_groups) - 1.0
        low, high = np.where(excess > 0, z, low), np.where(excess > 0, high, z)
        newton = z - excess / np.bincount(group, weights=slopes, minlength=n_groups)
        step = np.where((newton >= low) & (newton <= high), newton, 0.5 * (low + high))
        converged = np.all(np.abs(step - z) <= _SHIN_Z_TOLERANCE)
        z = step
        if converged:
            break
    has_margin = booksum > 1.0
    z = np.where(has_margin, z, 0.0)
    shin, _ = _shin_probabilities(a, z[group])
    probs = np.where(has_margin[group], shin, implied / booksum[group])
    # z is solved to ~1e-15; this only absorbs the last rounding.
    probs = probs / np.bincount(group, weights=probs, minlength=n_groups)[group]
    return probs, z


@overload
def remove_margin_shin(odds: ArrayLike, *, return_z: Literal[False] = ...) -> np.ndarray: ...
@overload
def remove_margin_shin(
    odds: ArrayLike, *, return_z: Literal[True]
) -> tuple[np.ndarray, FloatOrArray]: ...
def remove_margin_shin(
    odds: ArrayLike, *, return_z: bool = False
) -> np.ndarray | tuple[np.ndarray, FloatOrArray]:
    """Margin-free probabilities by Shin's model of a bookmaker facing insider traders.

    Shin (1993) prices selection i with true probability p_i as
    ``implied_i = sqrt(z p_i + (1 - z) p_i^2) * sum_j sqrt(z p_j + (1 - z) p_j^2)``, where z is
    the share of insider money. Inverting it gives
    ``p_i = (sqrt(z^2 + 4 (1 - z) implied_i^2 / booksum) - z) / (2 (1 - z))``, and z is the value
    for which the p_i sum to 1, found here by Newton steps safeguarded by bisection. Relative to
    proportional removal it moves probability from longshots to favourites (the
    favourite-longshot bias); for two-way markets it equals subtracting half the overround from
    each implied probability. A market whose overround is <= 0 gets proportional probabilities
    and z = 0.

    Args:
        odds: decimal prices of one market (1-D) or of one market per row (2-D).
        return_z: also return z (a float for one market, one value per row for 2-D).

    Returns:
        The probabilities (same shape as ``odds``, summing to 1 per market), and z if asked.
    """
    market = _market(odds)
    n_markets, size = (1, market.shape[0]) if market.ndim == 1 else market.shape
    group = np.repeat(np.arange(n_markets), size)
    probs, z = _shin_by_group(1.0 / market.ravel(), group, n_markets)
    probs = probs.reshape(market.shape)
    if not return_z:
        return probs
    return probs, (float(z[0]) if market.ndim == 1 else z)


def _check_method(method: str) -> None:
    if method not in MARGIN_METHODS:
        raise InvalidInput(f"margin method must be one of {MARGIN_METHODS}, got {method!r}")


def remove_margin(odds: ArrayLike, method: MarginMethod = "proportional") -> np.ndarray:
    """Margin-free probabilities of a market by ``"proportional"`` or ``"shin"`` removal."""
    _check_method(method)
    if method == "shin":
        return remove_margin_shin(odds)
    return remove_margin_proportional(odds)


def remove_margin_grouped(
    prices: pd.Series | np.ndarray | Sequence[float],
    group_ids: pd.Series | np.ndarray | Sequence[Any],
    method: MarginMethod = "proportional",
) -> pd.Series | np.ndarray:
    """Margin-free probabilities for many markets of any sizes at once.

    Args:
        prices: one decimal price per selection, all markets together in any order.
        group_ids: per price, the key of its market (e.g. ``frame["market_key"]``, or
            ``frame.groupby([...]).ngroup()`` for composite keys); same length as ``prices``.
        method: ``"proportional"`` or ``"shin"``.

    Returns:
        The probabilities in the order of ``prices``: a Series with the same index when
        ``prices`` is a Series, a numpy array otherwise.
    """
    _check_method(method)
    arr = _odds(prices, "prices")
    keys = np.asarray(group_ids)
    if arr.ndim != 1 or keys.shape != arr.shape:
        raise InvalidInput(
            f"prices and group_ids must be 1-D of the same length, got shapes {arr.shape} "
            f"and {keys.shape}"
        )
    group, uniques = pd.factorize(keys, use_na_sentinel=True)
    if (group < 0).any():
        first = int(np.flatnonzero(group < 0)[0])
        raise InvalidInput(f"group_ids must not be missing, got {keys[first]!r} at index {first}")
    implied = 1.0 / arr
    if method == "shin":
        probs, _ = _shin_by_group(implied, group, len(uniques))
    else:
        probs = implied / np.bincount(group, weights=implied, minlength=len(uniques))[group]
    if isinstance(prices, pd.Series):
        return pd.Series(probs, index=prices.index, name="probability")
    return probs


# --- value and staking --------------------------------------------------------------------


def fair_odds(probability: ArrayLike) -> FloatOrArray:
    """The decimal price with no margin and no edge for a probability: 1 / probability.

    Probabilities so small that the price overflows (below about 1e-308) give ``inf``.
    """
    p = _probability(probability, positive=True)
    with np.errstate(over="ignore"):
        return _out(1.0 / p)


def expected_value(probability: ArrayLike, odds: ArrayLike) -> FloatOrArray:
    """Expected profit per unit staked at ``odds`` when the selection wins with ``probability``.

    ``EV = p * odds - 1``: 0.5 at 2.2 gives 0.10, ten cents per unit staked.
    """
    return _out(_probability(probability) * _odds(odds) - 1.0)


def edge(probability: ArrayLike, odds: ArrayLike) -> FloatOrArray:
    """The edge of a bet, which betml defines as its EV per unit stake, ``p * odds - 1``.

    Same value as :func:`expected_value`; the name reads better next to tiers and thresholds
    (``min_edge``, :func:`signal_tier`). It is not the probability gap ``p - 1 / odds``.
    """
    return expected_value(probability, odds)


def _full_kelly(p: np.ndarray, o: np.ndarray) -> np.ndarray:
    return np.clip((p * o - 1.0) / (o - 1.0), 0.0, 1.0)


def kelly_fraction(probability: ArrayLike, odds: ArrayLike) -> FloatOrArray:
    """Full-Kelly share of the bankroll to stake: ``(p * odds - 1) / (odds - 1)``.

    Clipped at 0 (no bet without positive EV); it cannot exceed 1 for p <= 1, and is clipped
    there as well. Zero exactly when the expected value is <= 0.
    """
    return _out(_full_kelly(_probability(probability), _odds(odds)))


def fractional_kelly(probability: ArrayLike, odds: ArrayLike, fraction: ArrayLike) -> FloatOrArray:
    """``fraction`` (in [0, 1]) of the full-Kelly stake, e.g. 0.25 for quarter Kelly."""
    share = _unit_fraction(fraction, "fraction")
    return _out(share * _full_kelly(_probability(probability), _odds(odds)))


def kelly_stake(
    bankroll: ArrayLike,
    probability: ArrayLike,
    odds: ArrayLike,
    fraction: float = 1.0,
    max_fraction: float | None = None,
) -> FloatOrArray:
    """Amount to stake: ``bankroll * min(fraction * full Kelly, max_fraction)``.

    Args:
        bankroll: current bankroll, finite and >= 0.
        probability: probability that the selection wins.
        odds: decimal price on offer.
        fraction: multiplier of full Kelly, in [0, 1].
        max_fraction: cap on the share of the bankroll staked on one bet, in [0, 1]; no cap
            when None.
    """
    money = _bankroll(bankroll)
    share = _unit_fraction(fraction, "fraction") * _full_kelly(
        _probability(probability), _odds(odds)
    )
    if max_fraction is not None:
        share = np.minimum(share, _unit_fraction(max_fraction, "max_fraction"))
    return _out(money * share)


def minimum_acceptable_odds(probability: ArrayLike, min_edge: ArrayLike = 0.0) -> FloatOrArray:
    """Lowest price at which a bet still has an edge of at least ``min_edge``.

    From ``p * odds - 1 >= min_edge``: ``odds >= (1 + min_edge) / p``. With ``min_edge = 0`` it
    is the fair odds. Like :func:`fair_odds`, it is ``inf`` where the price overflows.
    """
    p = _probability(probability, positive=True)
    margin = _as_float_array(min_edge, "min_edge")
    _check(margin, np.isfinite(margin) & (margin > -1.0), "min_edge", "finite and above -1")
    with np.errstate(over="ignore"):
        return _out((1.0 + margin) / p)


# --- tiers and recommendations ------------------------------------------------------------


def signal_tier(edge: FloatOrArray) -> SignalTier:
    """The tier of one edge: A >= 0.10, B >= 0.05, C >= 0.02, D below (no bet).

    Edges within :data:`EDGE_TOLERANCE` below a threshold count as reaching it. For many edges
    at once use :func:`signal_tiers`.
    """
    value = _single(_edge_value(edge, "edge"), "edge")
    if value >= TIER_A_MIN_EDGE - EDGE_TOLERANCE:
        return SignalTier.A
    if value >= TIER_B_MIN_EDGE - EDGE_TOLERANCE:
        return SignalTier.B
    if value >= TIER_C_MIN_EDGE - EDGE_TOLERANCE:
        return SignalTier.C
    return SignalTier.D


def signal_tiers(edges: ArrayLike) -> np.ndarray:
    """Vectorised :func:`signal_tier`: an array of tier letters (``"A"``..``"D"``), same shape."""
    values = _edge_value(edges, "edges")
    conditions = [
        values >= TIER_A_MIN_EDGE - EDGE_TOLERANCE,
        values >= TIER_B_MIN_EDGE - EDGE_TOLERANCE,
        values >= TIER_C_MIN_EDGE - EDGE_TOLERANCE,
    ]
    letters = [SignalTier.A.value, SignalTier.B.value, SignalTier.C.value]
    return np.select(conditions, letters, default=SignalTier.D.value).astype("<U1")


@dataclass(frozen=True)
class Recommendation:
    """What betml tells its callers (serving, the Go service) about one selection at a price.

    Attributes:
        probability: model probability that the selection wins.
        odds: decimal price on offer.
        fair_odds: ``1 / probability``.
        expected_value: EV (the edge) per unit stake, ``probability * odds - 1``.
        kelly_fraction: full-Kelly share of the bankroll (0 without positive EV).
        stake: amount to stake, ``bankroll * kelly_multiplier * kelly_fraction``; 0 when the
            tier is D or the edge is below ``min_edge``.
        minimum_acceptable_odds: lowest price that still gives ``min_edge``.
        tier: signal tier of the edge.
    """

    probability: float
    odds: float
    fair_odds: float
    expected_value: float
    kelly_fraction: float
    stake: float
    minimum_acceptable_odds: float
    tier: SignalTier

    @property
    def is_bet(self) -> bool:
        """Whether betml recommends staking anything."""
        return self.stake > 0.0


@dataclass(frozen=True)
class Recommendations:
    """:class:`Recommendation` of many selections at once: one array per field, same order."""

    probability: np.ndarray
    odds: np.ndarray
    fair_odds: np.ndarray
    expected_value: np.ndarray
    kelly_fraction: np.ndarray
    stake: np.ndarray
    minimum_acceptable_odds: np.ndarray
    tier: np.ndarray
    """Tier letters, ``"A"``..``"D"``."""

    def __getitem__(self, i: int) -> Recommendation:
        return Recommendation(
            probability=float(self.probability[i]),
            odds=float(self.odds[i]),
            fair_odds=float(self.fair_odds[i]),
            expected_value=float(self.expected_value[i]),
            kelly_fraction=float(self.kelly_fraction[i]),
            stake=float(self.stake[i]),
            minimum_acceptable_odds=float(self.minimum_acceptable_odds[i]),
            tier=SignalTier(str(self.tier[i])),
        )


def recommend_all(
    probabilities: ArrayLike,
    odds: ArrayLike,
    *,
    bankroll: float = 1.0,
    kelly_multiplier: float = 0.25,
    min_edge: float = 0.02,
) -> Recommendations:
    """The recommendations of many selections at once, by the rules of :func:`recommend`."""
    p = np.atleast_1d(_probability(probabilities, positive=True))
    price = np.atleast_1d(_odds(odds))
    if p.shape != price.shape:
        raise InvalidInput(f"probabilities {p.shape} and odds {price.shape} differ in shape")
    money = _single(_bankroll(bankroll), "bankroll")
    multiplier = _single(_unit_fraction(kelly_multiplier, "kelly_multiplier"), "kelly_multiplier")
    margin = _single(_as_float_array(min_edge, "min_edge"), "min_edge")
    value = p * price - 1.0
    tiers = signal_tiers(value)
    full = _full_kelly(p, price)
    bets = (tiers != SignalTier.D.value) & (value >= margin - EDGE_TOLERANCE)
    return Recommendations(
        probability=p,
        odds=price,
        fair_odds=1.0 / p,
        expected_value=value,
        kelly_fraction=full,
        stake=np.where(bets, money * multiplier * full, 0.0),
        minimum_acceptable_odds=np.atleast_1d(minimum_acceptable_odds(p, margin)),
        tier=tiers,
    )


def recommend(
    probability: float,
    odds: float,
    *,
    bankroll: float = 1.0,
    kelly_multiplier: float = 0.25,
    min_edge: float = 0.02,
) -> Recommendation:
    """The recommendation for one selection whose model probability is ``probability``.

    The stake is fractional Kelly (``kelly_multiplier`` of full Kelly, of ``bankroll``) and is
    zero unless the edge reaches both ``min_edge`` and tier C (within EDGE_TOLERANCE); so with
    ``min_edge`` above 0.02 a C (or B) selection may show its tier with a zero stake. For many
    selections at once use :func:`recommend_all`.
    """
    p = _single(_probability(probability, positive=True), "probability")
    price = _single(_odds(odds), "odds")
    return recommend_all(
        [p], [price], bankroll=bankroll, kelly_multiplier=kelly_multiplier, min_edge=min_edge
    )[0]
