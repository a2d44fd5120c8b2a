"""The one entry point of betml's features: a pure batch function over the selection frame."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.features.columns import FEATURE_COLUMNS, KEY_COLUMNS, REQUIRED_COLUMNS
from betting.features.elo import elo_before
from betting.features.history import head_to_head, participant_stats
from betting.features.market import odds_features
from betting.features.participants import Encoded, encode, participant_table
from betting.features.selections import elo_expected, selection_features

logger = logging.getLogger(__name__)


def _check(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput(f"selection frame lacks columns {missing}")
    if frame["starts_at"].isna().any():
        key = frame.loc[frame["starts_at"].isna(), "event_key"].iloc[0]
        raise InvalidInput(f"selection frame: event {key!r} has no starts_at")


def participant_features(coded: Encoded) -> pd.DataFrame:
    """The participant table with Elo, history and head-to-head statistics."""
    table = participant_table(coded)
    table["elo"] = elo_before(table)
    table = pd.concat([table, participant_stats(table), head_to_head(table)], axis=1)
    table["elo_expected"] = elo_expected(table)
    return table


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Add every column of ``FEATURE_COLUMNS`` (float) to a selection frame.

    Each event's features use only events that started strictly before it, never its own
    result, so the same call serves training (the full history), batch scoring and online
    serving (an event's rows plus its participants' history): an event's features are the same
    whichever later or simultaneous events the frame also holds. Rows may come in any order;
    the result keeps ``frame``'s rows, order and index.

    Args:
        frame: a selection frame as made by :func:`betting.frames.selection_frame`; the odds
            aggregates are optional (their features are then NaN).

    Returns:
        ``frame`` with the feature columns added at the end; a column of the same name already
        in ``frame`` (``close_implied_std``) is replaced in place. ``frame`` is not modified.

    Raises:
        InvalidInput: a required column is missing or an event has no start time.
    """
    _check(frame)
    coded = encode(frame)
    table = participant_features(coded)
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
