"""Statistics of each (event, participant) over the participant's strictly earlier events.

Only settled events (points known) count as history. Events sharing a start time never see each
other. Every statistic is computed by vectorised prefix sums over the table sorted by participant
and time; the summed values are small integers or halves, so the sums are exact and a statistic
does not depend on which other participants or later events the frame holds.

A mean over zero earlier events (``win_pct``, ``ppg``, ``form5``, ``form10``, ``goals_for``,
``goals_against``, ``h2h_share``) is NaN, like a missing price; ``experience`` and
``h2h_meetings`` (then 0) tell models that there was no history. ``streak`` is then 0 and
``rest_days`` the cap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.features.columns import FORM_LONG, FORM_SHORT, REST_DAYS_CAP

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
