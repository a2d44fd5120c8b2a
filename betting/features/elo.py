"""Elo rules of betml's features: the rating change one settled event brings.

Two-participant events use standard Elo with a draw worth half a point and
:data:`~betting.features.columns.ELO_HOME_ADVANTAGE` added to the home side's rating when the
expectation is computed. Races (more than two runners, and only the winner known) are updated
winner-versus-field: each (winner, loser) pair is an Elo game the winner won, with the K-factor
shared over the ``n - 1`` pairs, so a winner gains at most K and the rules stay zero-sum.

Ratings only move after an event's start time has passed: the state
(:mod:`betting.features.state`) computes the changes of one start time's events from the ratings
left by strictly earlier events, then applies them together. Unsettled events change nothing.
"""

from __future__ import annotations

import math

from betting.features.columns import ELO_K


def expected_score(rating: float, other: float) -> float:
    """The Elo expectation of a participant rated ``rating`` against one rated ``other``."""
    return 1.0 / (1.0 + 10.0 ** ((other - rating) / 400.0))


def match_delta(home_points: float, home: float, away: float, advantage: float) -> float:
    """The first side's rating change in a two-participant event (the second's is minus it).

    Args:
        home_points: the first side's points (win 1, draw 0.5, loss 0).
        home, away: the two ratings before the event.
        advantage: rating points added to the first side's rating for the expectation.
    """
    return ELO_K * (home_points - 1.0 / (1.0 + 10.0 ** ((away - home - advantage) / 400.0)))


def race_deltas(ratings: list[float], points: list[float]) -> list[tuple[int, float]]:
    """Rating changes of a race's runners (by position), winner versus field.

    Empty while any runner's points are unknown.
    """
    if any(math.isnan(p) for p in points):
        return []
    winners = [i for i, p in enumerate(points) if p == 1.0]
    losers = [i for i, p in enumerate(points) if p == 0.0]
    scale = ELO_K / max(len(ratings) - 1, 1)
    deltas = []
    for w in winners:
        for loser in losers:
            delta = scale * (1.0 - expected_score(ratings[w], ratings[loser]))
            deltas.append((w, delta))
            deltas.append((loser, -delta))
    return deltas
