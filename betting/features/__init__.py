"""Selection features: pure batch functions over the selection frame of :mod:`betting.frames`.

:func:`build_features` serves training, batch scoring and online serving alike;
``FEATURE_COLUMNS`` lists the model inputs (all float) and ``FEATURE_SCHEMA_VERSION`` is stored
with every model (see :mod:`betting.features.columns` for its bump rule).

How they are made:

1. The participant table (:mod:`~betting.features.participants`): one row per (event,
   participant) with points won (win 1, draw 0.5, loss 0; races: won 1/0) and goals.
2. Per row, from the participant's strictly earlier settled events only: Elo before the event
   (:mod:`~betting.features.elo`), win %, points per game, form over the last 5 and 10 events,
   signed streak, rest days (capped), experience, goal averages and head-to-head record
   (:mod:`~betting.features.history`).
3. Mapped to selections as own / opponents / difference features plus indicators
   (:mod:`~betting.features.selections`), and odds features (:mod:`~betting.features.market`).
"""

from betting.features.build import build_features, feature_frame
from betting.features.columns import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, KEY_COLUMNS

__all__ = [
    "FEATURE_COLUMNS",
    "FEATURE_SCHEMA_VERSION",
    "KEY_COLUMNS",
    "build_features",
    "feature_frame",
]
