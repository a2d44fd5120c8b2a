"""Today's features before the feature state: the vectorised batch pass of commit bd05624.

Kept only as :mod:`benchmarks.online_features`' baseline ("rebuild per request": every raw event
ran this over its sport's whole history plus the request). Its rows equal
:func:`betting.features.build_features` bit for bit (``tests/unit/test_feature_state.py`` checks
the state against the batch features; this module is the code that served until then).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from betting.features.build import _assemble, _check
from betting.features.columns import (
    ELO_HOME_ADVANTAGE,
    ELO_INITIAL,
    ELO_K,
    FORM_LONG,
    FORM_SHORT,
    REST_DAYS_CAP,
)
from betting.features.participants import HOME, encode, participant_table
from betting.features.selections import elo_expected

_NS_PER_DAY = 86_400 * 10**9


def _run_starts(keys: list[np.ndarray]) -> np.ndarray:
    """For rows sorted by ``keys``, the index of the first row of each row's run of equal keys."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
    for key in keys:
        new[1:] |= key[1:] != key[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(n), 0))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class _Prior:
    """Sums of per-row values over the earlier time blocks of the same group (sorted rows)."""

    def __init__(self, group: list[np.ndarray], t: np.ndarray) -> None:
        self.group_first = _run_starts(group)
        self.block_first = _run_starts([*group, t])

    def exclusive(self, values: np.ndarray) -> np.ndarray:
        """Global exclusive prefix sum taken at each row's block start."""
        return (np.cumsum(values) - values)[self.block_first]

    def sum(self, values: np.ndarray) -> np.ndarray:
        before = np.cumsum(values) - values
        return before[self.block_first] - before[self.group_first]


def _form(prefix: np.ndarray, j: np.ndarray, n_before: np.ndarray, window: int) -> np.ndarray:
    """Points per game over the last ``window`` settled events before each row."""
    lo = np.maximum(j - window, j - n_before)
    return _ratio(prefix[j] - prefix[lo], (j - lo).astype(float))


def participant_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Win %, points per game, form, streak, rest days, experience and goal averages.

    Args:
        table: the participant table (see ``participant_table``).

    Returns:
        A frame aligned with ``table`` holding those statistics.
    """
    order = np.lexsort((table["ev"].to_numpy(), table["code"].to_numpy()))
    code = table["code"].to_numpy()[order]
    t = table["t"].to_numpy()[order]
    pts = table["points"].to_numpy(float)[order]
    goals_for = table["scored"].to_numpy(float)[order]
    goals_against = table["conceded"].to_numpy(float)[order]
    settled = ~np.isnan(pts)
    scored = settled & ~np.isnan(goals_for) & ~np.isnan(goals_against)
    prior = _Prior([code], t)
    n_before = prior.sum(settled.astype(np.int64))
    n_scored = prior.sum(scored.astype(np.int64))
    j = prior.exclusive(settled.astype(np.int64))  # settled rows (all participants) before

    settled_rows = np.flatnonzero(settled)
    prefix = np.r_[0.0, np.cumsum(pts[settled_rows])]
    wins = pts[settled_rows] == 1.0
    run_first = _run_starts([code[settled_rows], wins])
    run_length = np.arange(len(settled_rows)) - run_first + 1
    streak_after = np.where(wins, run_length, -run_length).astype(float)
    last = np.maximum(j - 1, 0)
    has_history = n_before > 0
    last_time = t[settled_rows][last] if len(settled_rows) else t
    rest = np.minimum((t - last_time) / _NS_PER_DAY, REST_DAYS_CAP)

    stats = {
        "win_pct": _ratio(prior.sum((pts == 1.0).astype(float)), n_before),
        "ppg": _ratio(prior.sum(np.where(settled, pts, 0.0)), n_before),
        "form5": _form(prefix, j, n_before, FORM_SHORT),
        "form10": _form(prefix, j, n_before, FORM_LONG),
        "streak": np.where(has_history, streak_after[last] if len(settled_rows) else 0.0, 0.0),
        "rest_days": np.where(has_history, rest, REST_DAYS_CAP),
        "experience": n_before.astype(float),
        "goals_for": _ratio(prior.sum(np.where(scored, goals_for, 0.0)), n_scored),
        "goals_against": _ratio(prior.sum(np.where(scored, goals_against, 0.0)), n_scored),
    }
    out = pd.DataFrame(index=table.index)
    for name, values in stats.items():
        column = np.empty(len(order))
        column[order] = values
        out[name] = column
    return out


def head_to_head(table: pd.DataFrame) -> pd.DataFrame:
    """Earlier meetings of each row's participant with its opponent (two-participant events).

    Returns:
        A frame aligned with ``table``: ``h2h_meetings`` (settled earlier meetings),
        ``h2h_share`` (the participant's points share in them) and ``h2h_draw_share``.
    """
    out = pd.DataFrame(
        {"h2h_meetings": 0.0, "h2h_share": np.nan, "h2h_draw_share": np.nan}, index=table.index
    )
    paired = np.flatnonzero(table["opponent"].to_numpy() >= 0)
    if not len(paired):
        return out
    sub = table.iloc[paired]
    order = np.lexsort((sub["ev"].to_numpy(), sub["opponent"].to_numpy(), sub["code"].to_numpy()))
    pts = sub["points"].to_numpy(float)[order]
    settled = ~np.isnan(pts)
    prior = _Prior(
        [sub["code"].to_numpy()[order], sub["opponent"].to_numpy()[order]],
        sub["t"].to_numpy()[order],
    )
    meetings = prior.sum(settled.astype(np.int64))
    share = _ratio(prior.sum(np.where(settled, pts, 0.0)), meetings)
    draws = _ratio(prior.sum((pts == 0.5).astype(float)), meetings)
    rows = paired[order]
    out.iloc[rows, 0] = meetings.astype(float)
    out.iloc[rows, 1] = share
    out.iloc[rows, 2] = draws
    return out


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


def rebuild_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch features as computed before the feature state (same rows, same columns)."""
    _check(frame)
    coded = encode(frame)
    table = participant_table(coded)
    table["elo"] = elo_before(table)
    table = pd.concat([table, participant_stats(table), head_to_head(table)], axis=1)
    table["elo_expected"] = elo_expected(table)
    return _assemble(frame, coded, table)
