"""Season calendars of the simulator: season labels, match days and kick-off times.

A simulated season opens on 1 August and its match days are spread over the following
:data:`SEASON_DAYS` days, so a season labelled ``"2020-21"`` runs from August 2020 into May 2021.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.errors import InvalidInput

#: Days over which the match days (or race days) of one season are spread.
SEASON_DAYS = 300
#: Latest first season year: a season's dates must fit in four-digit years.
LAST_YEAR = 9000


def season_label(year: int) -> str:
    """The label of the season opening in ``year``, e.g. ``2020`` -> ``"2020-21"``."""
    return f"{year}-{(year + 1) % 100:02d}"


def match_day_offsets(count: int, *, what: str) -> np.ndarray:
    """Day offsets from the season's opening of ``count`` distinct days spread evenly.

    Args:
        count: how many match days (or race days) the season has.
        what: what is being scheduled, named in the error when the days do not fit.

    Raises:
        InvalidInput: when ``count`` days do not fit in one season.
    """
    if count > SEASON_DAYS:
        raise InvalidInput(
            f"{what}: {count} match days do not fit in a season of {SEASON_DAYS} days"
        )
    return np.arange(count, dtype=np.int64) * SEASON_DAYS // max(count, 1)


def kickoffs(year: int, day_offsets: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Kick-off times (``datetime64[m]``, UTC) from day offsets and minutes after midnight."""
    opening = np.datetime64(f"{year:04d}-08-01T00:00", "m")
    return opening + (day_offsets * 1440 + minutes).astype("timedelta64[m]")


def to_utc(times: np.ndarray) -> pd.DatetimeIndex:
    """A tz-aware UTC index from naive ``datetime64`` values that are already in UTC."""
    return pd.DatetimeIndex(times.astype("datetime64[us]")).tz_localize("UTC")
