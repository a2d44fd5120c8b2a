"""Elo ratings before each event, from a sequential pass over the participant table.

Two-participant events use standard Elo with a draw worth half a point and
:data:`~betting.features.columns.ELO_HOME_ADVANTAGE` added to the home side's rating when the
expectation is computed. Races (more than two runners, and only the winner known) are updated
winner-versus-field: each (winner, loser) pair is an Elo game the winner won, with the K-factor
shared over the ``n - 1`` pairs, so a winner gains at most K and the pass stays zero-sum.

Ratings only move after an event's start time has passed: every event of one start time reads
the ratings left by strictly earlier events, then their updates are applied together.
Events without a result leave every rating unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from betting.features.columns import ELO_HOME_ADVANTAGE, ELO_INITIAL, ELO_K
from betting.features.participants import HOME


def _expected(rating: float, other: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((other - rating) / 400.0))


def _event_deltas(
    codes: list[int], ratings: list[float], points: list[float]
) -> list[tuple[int, float]]:
    """Rating changes of a race's runners, winner versus field (empty when unsettled)."""
    if any(math.isnan(p) for p in points):
        return []
    winners = [i for i, p in enumerate(points) if p == 1.0]
    losers = [i for i, p in enumerate(points) if p == 0.0]
    scale = ELO_K / max(len(codes) - 1, 1)
    deltas = []
    for w in winners:
        for loser in losers:
            delta = scale * (1.0 - _expected(ratings[w], ratings[loser]))
            deltas.append((codes[w], delta))
            deltas.append((codes[loser], -delta))
    return deltas


def elo_before(table: pd.DataFrame) -> np.ndarray:
    """Each row's rating before its event; ``table`` as from ``participant_table``."""
    n = len(table)
    if n == 0:
        return np.empty(0)
    ev = table["ev"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    sizes = np.diff(np.r_[starts, n])
    second = np.minimum(starts + 1, n - 1)
    codes = table["code"].to_numpy()
    points = table["points"].to_numpy(float)
    bonus = np.where(table["role"].to_numpy() == HOME, ELO_HOME_ADVANTAGE, 0.0)
    time = table["t"].to_numpy()[starts]
    new_time = np.r_[True, time[1:] != time[:-1]]
    settled = ~np.isnan(points[starts]) & ~np.isnan(points[second])
    ratings = [ELO_INITIAL] * (int(codes.max()) + 1)
    before = np.full(n, ELO_INITIAL)
    first_before = [ELO_INITIAL] * len(starts)
    second_before = [ELO_INITIAL] * len(starts)
    pending: list[tuple[int, float]] = []
    for e, (flush, size, a, b, pa, is_settled, advantage) in enumerate(
        zip(
            new_time.tolist(),
            sizes.tolist(),
            codes[starts].tolist(),
            codes[second].tolist(),
            points[starts].tolist(),
            settled.tolist(),
            (bonus[starts] - bonus[second]).tolist(),
            strict=True,
        )
    ):
        if flush and pending:  # a new start time: earlier events' results now count
            for code, delta in pending:
                ratings[code] += delta
            pending = []
        if size == 2:  # the common case, kept inline for speed
            ra, rb = ratings[a], ratings[b]
            first_before[e], second_before[e] = ra, rb
            if is_settled:
                delta = ELO_K * (pa - 1.0 / (1.0 + 10.0 ** ((rb - ra - advantage) / 400.0)))
                pending.append((a, delta))
                pending.append((b, -delta))
            continue
        rows = slice(starts[e], starts[e] + size)
        event_codes = codes[rows].tolist()
        event_ratings = [ratings[c] for c in event_codes]
        before[rows] = event_ratings
        pending.extend(_event_deltas(event_codes, event_ratings, points[rows].tolist()))
    pairs = sizes == 2
    before[starts[pairs]] = np.asarray(first_before)[pairs]
    before[starts[pairs] + 1] = np.asarray(second_before)[pairs]
    return before
