"""Simulated bookmakers: noisy estimates of the truth, plus a margin with favourite-longshot bias.

Each bookmaker ``book_1`` .. ``book_k`` has its own margin, drawn once per simulation. To price a
market it starts from the true probabilities, adds estimation noise in log space (a part shared by
every bookmaker, as they watch the same information, and a part of its own), and applies its
margin by a power transform: implied probabilities ``q ** gamma`` with ``gamma < 1`` chosen so
they sum to ``1 + margin``. Because ``q ** (gamma - 1)`` grows as ``q`` shrinks, longshots carry
more of the margin than favourites (the favourite-longshot bias). Opening prices are noisier than
closing prices, so margin-free closing odds are nearer the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from betting.errors import InvalidInput

#: Range of the bookmakers' margins (overround of their own prices).
MARGIN_RANGE = (0.02, 0.08)
#: Lowest decimal price a bookmaker offers.
MIN_PRICE = 1.01


@dataclass(frozen=True)
class PriceNoise:
    """Estimation noise of one kind of price, as standard deviations in log-probability."""

    common: float
    """Noise shared by every bookmaker (the market's collective error)."""
    own: float
    """Noise of each bookmaker on its own."""


#: Opening prices, taken a few days before the start, are rough.
OPEN_NOISE = PriceNoise(common=0.22, own=0.10)
#: Closing prices, taken at the start, have absorbed most of the information.
CLOSE_NOISE = PriceNoise(common=0.06, own=0.04)


@dataclass(frozen=True)
class BookmakerPanel:
    """The bookmakers of one simulation and their margins."""

    names: tuple[str, ...]
    margins: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def draw_bookmakers(count: int, rng: np.random.Generator) -> BookmakerPanel:
    """``count`` bookmakers named ``book_1`` .. ``book_<count>`` with margins in 2%-8%."""
    if count < 1:
        raise InvalidInput(f"bookmakers: need at least one bookmaker, got {count}")
    margins = rng.uniform(*MARGIN_RANGE, size=count)
    return BookmakerPanel(tuple(f"book_{i + 1}" for i in range(count)), margins)


def power_margin(probs: np.ndarray, present: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Implied probabilities ``probs ** gamma`` that sum to ``1 + margin`` in each market.

    Args:
        probs: probabilities over the last axis (markets along the others), summing to one over
            the ``present`` entries.
        present: which entries of the last axis are selections.
        margin: overround per market, broadcastable to ``probs.shape[:-1]``.

    Returns:
        Implied probabilities, zero where not ``present``.
    """
    target = 1.0 + np.broadcast_to(margin, probs.shape[:-1])
    logs = np.where(present, np.log(np.where(present, probs, 1.0)), 0.0)
    gamma = np.ones(probs.shape[:-1])
    # Newton on the convex, decreasing sum(q**gamma): one overshoot, then monotone convergence.
    for _ in range(20):
        powered = np.where(present, np.exp(gamma[..., None] * logs), 0.0)
        excess = powered.sum(axis=-1) - target
        slope = (powered * logs).sum(axis=-1)
        gamma = np.clip(gamma - excess / np.minimum(slope, -1e-12), 1e-3, 1.0)
        if np.all(np.abs(excess) < 1e-10):
            break
    powered = np.where(present, np.exp(gamma[..., None] * logs), 0.0)
    return powered * (target / powered.sum(axis=-1))[..., None]


def quote(
    probs: np.ndarray,
    present: np.ndarray,
    panel: BookmakerPanel,
    noise: PriceNoise,
    rng: np.random.Generator,
) -> np.ndarray:
    """Decimal prices of every bookmaker for markets of true probabilities ``probs``.

    Args:
        probs: true probabilities, shape ``(markets, slots)``.
        present: which slots are selections, same shape.
        panel: the bookmakers.
        noise: how rough the prices are (opening or closing).
        rng: the simulation's random generator.

    Returns:
        Prices of shape ``(bookmakers, markets, slots)``, rounded to 2 decimals and at least
        :data:`MIN_PRICE`; NaN where a slot is not a selection.
    """
    n_books = len(panel)
    common = rng.normal(0.0, noise.common, size=probs.shape)
    own = rng.normal(0.0, noise.own, size=(n_books, *probs.shape))
    logits = np.log(np.where(present, probs, 1.0)) + common + own
    logits = np.where(present, logits, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    estimate = np.exp(logits)
    estimate /= estimate.sum(axis=-1, keepdims=True)
    implied = power_margin(
        estimate, np.broadcast_to(present, estimate.shape), panel.margins[:, None]
    )
    with np.errstate(divide="ignore"):
        prices = np.maximum(np.round(1.0 / implied, 2), MIN_PRICE)
    return np.where(present, prices, np.nan)
