"""Map participant statistics onto selection rows as selection-relative features.

A selection whose participant X takes part in the event gets X's statistics (``elo``,
``form5``, ...), the mean over its opponents (``opp_elo``, ... : the other side in a match, the
rest of the field in a race) and differences (``elo_diff`` = own minus opponents).

A selection without a participant of the event (draw, over, under) gets the neutral mapping:
own and opponent statistics are both the mean over the event's participants, differences are
``-(max - min)`` over them (``-|home - away|`` in a match: the closer the sides, the higher),
``elo_expected`` is ``1 - (max - min)`` of the participants' Elo expectations (a balance),
``h2h_share`` is the share of earlier meetings that were drawn for a draw selection and 0.5 for
the others (NaN without meetings), ``h2h_meetings`` the number of earlier meetings.

Indicators: ``is_home``/``is_away`` (the selection's participant is the home/away side, in any
market), ``is_runner`` (a race runner), ``is_draw`` (a participant-less selection of a 1X2
market), ``is_over``/``is_under`` (a participant-less selection whose name starts with "over" or
"under", case-insensitive). ``field_size`` counts the selections of the market;
``market_line`` is the market's line (0 where it has none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.features.columns import DIFF_STATS, ELO_HOME_ADVANTAGE, PARTICIPANT_STATS
from betting.features.participants import AWAY, HOME, RUNNER


def elo_expected(table: pd.DataFrame) -> np.ndarray:
    """Each participant's Elo win expectation within its event (home advantage included)."""
    groups = table["ev"].to_numpy()
    rating = table["elo"].to_numpy(float) + np.where(
        table["role"].to_numpy() == HOME, ELO_HOME_ADVANTAGE, 0.0
    )
    top = pd.Series(rating).groupby(groups).transform("max").to_numpy(float)
    strength = 10.0 ** ((rating - top) / 400.0)
    total = pd.Series(strength).groupby(groups).transform("sum").to_numpy(float)
    return strength / total


def _own_row(
    participant: np.ndarray, ev: np.ndarray, table: pd.DataFrame, n_names: int
) -> np.ndarray:
    """Row of ``table`` holding each selection's participant in its event, -1 if none."""
    table_key = table["ev"].to_numpy(np.int64) * n_names + table["code"].to_numpy(np.int64)
    row = pd.Index(table_key).get_indexer(ev.astype(np.int64) * n_names + participant)
    return np.where(participant >= 0, row, -1)


class _EventStats:
    """Sum, count, max and min of a participant statistic over each event (NaN skipped)."""

    def __init__(self, table: pd.DataFrame, n_events: int) -> None:
        self.table = table
        self.ev = table["ev"].to_numpy()
        self.n_events = n_events
        self.starts = np.flatnonzero(np.diff(self.ev, prepend=-1))

    def sum_count(self, stat: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.table[stat].to_numpy(float)
        known = ~np.isnan(values)
        total = np.bincount(self.ev, np.where(known, values, 0.0), minlength=self.n_events)
        count = np.bincount(self.ev, known, minlength=self.n_events)
        return total, count

    def spread(self, stat: str) -> np.ndarray:
        """max - min over each event's participants (NaN where none is known)."""
        out = np.full(self.n_events, np.nan)
        if len(self.starts):
            values = self.table[stat].to_numpy(float)
            with np.errstate(invalid="ignore"):
                top = np.fmax.reduceat(values, self.starts)
                low = np.fmin.reduceat(values, self.starts)
            out[self.ev[self.starts]] = top - low
        return out

    def largest(self, stat: str) -> np.ndarray:
        out = np.full(self.n_events, np.nan)
        if len(self.starts):
            values = self.table[stat].to_numpy(float)
            out[self.ev[self.starts]] = np.fmax.reduceat(values, self.starts)
        return out


def selection_features(
    frame: pd.DataFrame, rows: pd.DataFrame, table: pd.DataFrame, n_events: int, n_names: int
) -> dict[str, np.ndarray]:
    """Participant-derived features, indicators, field size and line of each row of ``frame``.

    Args:
        frame: the selection frame.
        rows: its encoded rows (``ev``, ``participant``, ``market``), aligned with ``frame``.
        table: the participant table (sorted by event) with every statistic added.
        n_events: the number of events.
        n_names: the number of participant codes.
    """
    ev = rows["ev"].to_numpy()
    own_row = _own_row(rows["participant"].to_numpy(), ev, table, n_names)
    matched = own_row >= 0
    take = np.where(matched, own_row, 0)
    events = _EventStats(table, n_events)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for stat in PARTICIPANT_STATS:
            own = np.where(matched, table[stat].to_numpy(float)[take], np.nan)
            has_own = ~np.isnan(own)
            event_sum, event_count = events.sum_count(stat)
            total, count = event_sum[ev], event_count[ev]
            mean = total / count
            others = (total - np.where(has_own, own, 0.0)) / (count - has_own)
            out[stat] = np.where(matched, own, mean)
            out[f"opp_{stat}"] = np.where(matched, others, mean)
            if stat in DIFF_STATS:
                spread = events.spread(stat)[ev]
                out[f"{stat}_diff"] = np.where(matched, own - others, -spread)
        balance = 1.0 - events.spread("elo_expected")[ev]
    out["elo_expected"] = np.where(matched, table["elo_expected"].to_numpy(float)[take], balance)
    out.update(_indicators(frame, table, matched, take))
    meetings = np.nan_to_num(events.largest("h2h_meetings")[ev])
    neutral_share = np.where(out["is_draw"] == 1.0, events.largest("h2h_draw_share")[ev], 0.5)
    out["h2h_meetings"] = np.where(matched, table["h2h_meetings"].to_numpy(float)[take], meetings)
    out["h2h_share"] = np.where(
        matched,
        table["h2h_share"].to_numpy(float)[take],
        np.where(meetings > 0, neutral_share, np.nan),
    )
    market = rows["market"].to_numpy()
    out["field_size"] = np.bincount(market)[market].astype(float)
    line = frame["line"] if "line" in frame.columns else pd.Series(np.nan, index=frame.index)
    out["market_line"] = np.nan_to_num(pd.to_numeric(line, errors="coerce").to_numpy(float))
    return out


def _indicators(
    frame: pd.DataFrame, table: pd.DataFrame, matched: np.ndarray, take: np.ndarray
) -> dict[str, np.ndarray]:
    role = np.where(matched, table["role"].to_numpy()[take], -1)
    free = ~matched
    codes, names = pd.factorize(frame["selection"], use_na_sentinel=False)
    lowered = pd.Series(np.asarray(names, dtype=object), dtype=object).str.lower().fillna("")
    over = free & lowered.str.startswith("over").to_numpy(bool)[codes]
    under = free & lowered.str.startswith("under").to_numpy(bool)[codes]
    return {
        "is_home": (role == HOME).astype(float),
        "is_away": (role == AWAY).astype(float),
        "is_runner": (role == RUNNER).astype(float),
        "is_draw": (free & frame["market_type"].eq("1x2").to_numpy(bool)).astype(float),
        "is_over": over.astype(float),
        "is_under": under.astype(float),
    }
