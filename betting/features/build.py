"""The one entry point of betml's features: a pure batch function over the selection frame.

History enters the features through the feature state only (:mod:`betting.features.state`):
:func:`build_features` folds a frame's events through a state (read each event, then apply it),
:func:`read_features` reads events after a kept state's history without applying them (online
serving), and both share everything else, so training, batch scoring and serving compute the
same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.features.columns import FEATURE_COLUMNS, KEY_COLUMNS, REQUIRED_COLUMNS
from betting.features.market import odds_features
from betting.features.participants import Encoded, encode, participant_table
from betting.features.selections import elo_expected, selection_features
from betting.features.state import (
    EventSides,
    FeatureState,
    event_sides,
    fold,
    stats_frame,
)

logger = logging.getLogger(__name__)

#: Gives an event's ``STATE_STATS`` rows (one per participant row of the event).
StatsReader = Callable[[EventSides], list[tuple[float, ...]]]


def _check(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput(f"selection frame lacks columns {missing}")
    if frame["starts_at"].isna().any():
        key = frame.loc[frame["starts_at"].isna(), "event_key"].iloc[0]
        raise InvalidInput(f"selection frame: event {key!r} has no starts_at")


def frame_events(frame: pd.DataFrame) -> tuple[Encoded, pd.DataFrame, list[EventSides]]:
    """The encoded frame, its participant table and its events in start order."""
    _check(frame)
    coded = encode(frame)
    table = participant_table(coded)
    return coded, table, list(event_sides(table, coded.names, coded.events["event_key"].tolist()))


def _with_stats(
    table: pd.DataFrame, read: list[tuple[EventSides, list[tuple[float, ...]]]]
) -> pd.DataFrame:
    table = pd.concat([table, stats_frame(read, table.index)], axis=1)
    table["elo_expected"] = elo_expected(table)
    return table


def _assemble(frame: pd.DataFrame, coded: Encoded, table: pd.DataFrame) -> pd.DataFrame:
    features = selection_features(frame, coded.rows, table, len(coded.events), len(coded.names))
    features.update(odds_features(frame, coded.rows["market"].to_numpy()))
    block = np.empty((len(FEATURE_COLUMNS), len(frame)))  # one block, no consolidation later
    for i, name in enumerate(FEATURE_COLUMNS):
        block[i] = features[name]
    added = pd.DataFrame(block.T, index=frame.index, columns=FEATURE_COLUMNS, copy=False)
    logger.debug("built %d features for %d selections", len(FEATURE_COLUMNS), len(frame))
    present = [c for c in FEATURE_COLUMNS if c in frame.columns]  # e.g. close_implied_std
    kept = frame.assign(**{c: added[c].to_numpy() for c in present})
    return pd.concat([kept, added.drop(columns=present)], axis=1)


def build_features(frame: pd.DataFrame, state: FeatureState | None = None) -> pd.DataFrame:
    """Add every column of ``FEATURE_COLUMNS`` (float) to a selection frame.

    Each event's features use only events that started strictly before it, never its own
    result, so the same call serves training (the full history), batch scoring and online
    serving (an event's rows plus its participants' history): an event's features are the same
    whichever later or simultaneous events the frame also holds. Rows may come in any order;
    the result keeps ``frame``'s rows, order and index.

    Args:
        frame: a selection frame as made by :func:`betting.frames.selection_frame`; the odds
            aggregates are optional (their features are then NaN).
        state: a state holding the history before the frame's events, updated in place with
            the frame's settled events; None: the frame is the whole history.

    Returns:
        ``frame`` with the feature columns added at the end; a column of the same name already
        in ``frame`` (``close_implied_std``) is replaced in place. ``frame`` is not modified.

    Raises:
        InvalidInput: a required column is missing or an event has no start time.
        StaleState: ``state`` already holds events later than one of the frame's.
    """
    coded, table, events = frame_events(frame)
    return _assemble(frame, coded, _with_stats(table, fold(events, state or FeatureState())))


def read_features(frame: pd.DataFrame, read: StatsReader) -> pd.DataFrame:
    """:func:`build_features` of events whose history is kept elsewhere: nothing is applied.

    Args:
        frame: the selection frame of the events (their own results are never used).
        read: the statistics of each event, e.g. ``FeatureState.read`` of a state holding
            every settled event before them.

    Raises:
        InvalidInput: a required column is missing or an event has no start time.
    """
    coded, table, events = frame_events(frame)
    return _assemble(frame, coded, _with_stats(table, [(e, read(e)) for e in events]))


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Keys, target and features of every selection: what ``betml data features`` writes.

    Columns are ``KEY_COLUMNS`` (event_key, market_key, selection, starts_at, season, won,
    true_probability; NaN/None where the input lacks one) followed by ``FEATURE_COLUMNS``.
    """
    built = build_features(frame)
    for column in KEY_COLUMNS:
        if column not in built.columns:
            built[column] = np.nan if column in ("won", "true_probability") else None
    return built[KEY_COLUMNS + FEATURE_COLUMNS].reset_index(drop=True)
