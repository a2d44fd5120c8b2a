"""Walk-forward splits: train on the past, test on the period right after it, move forward.

Rows are split by time, never at random, so no model is scored on data older than what it
trained on. Two kinds of size are understood:

- **periods**: an ``int`` counts distinct time values (or distinct group start times when
  ``groups`` is given, so a period is e.g. a match day);
- **spans**: a ``timedelta`` measures time, for datetime ``times`` only.

``train_size``, ``test_size`` and ``gap`` must all be periods or all be spans (a zero gap goes
with either). Every row of one group (an event) falls on one side, at the group's first time.

Example:
    >>> splits = walk_forward_splits(frame["starts_at"], n_splits=4, groups=frame["event_key"])
    >>> for split in splits:
    ...     model.fit(frame.iloc[split.train]); model.score(frame.iloc[split.test])
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from betting.errors import InvalidInput

Size = int | timedelta
Mode = Literal["expanding", "sliding"]


@dataclass(frozen=True)
class Split:
    """One walk-forward fold: positional row indices (ascending) and the bounds of each side."""

    train: np.ndarray
    test: np.ndarray
    train_start: Any
    """First time (or season) in the training rows."""
    train_end: Any
    """Last time (or season) in the training rows."""
    test_start: Any
    test_end: Any


def _row_times(times: pd.Series | np.ndarray) -> tuple[pd.Series, Any]:
    """Times as a plain numpy-backed series (UTC, naive) and the time zone they came in."""
    values = pd.Series(times).reset_index(drop=True)
    tz = getattr(values.dtype, "tz", None)
    if tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if values.isna().any():
        raise InvalidInput(f"times: missing value at position {int(values.isna().argmax())}")
    return values, tz


def _unit_times(values: pd.Series, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each row's time (its group's first time when grouped) and the sorted distinct times."""
    if groups is not None:
        keys = pd.Series(np.asarray(groups, dtype=object))
        if len(keys) != len(values):
            raise InvalidInput(f"groups: {len(keys)} values for {len(values)} times")
        if keys.isna().any():
            raise InvalidInput(f"groups: missing value at position {int(keys.isna().argmax())}")
        values = values.groupby(keys.to_numpy()).transform("min")
    row_times = values.to_numpy()
    return row_times, np.unique(row_times)


def _kind(train_size: Size | None, test_size: Size | None, gap: Size) -> str:
    kinds = {
        "span" if isinstance(v, timedelta | np.timedelta64) else "periods"
        for v in (train_size, test_size, gap)
        if v is not None and not (v == timedelta(0) or (isinstance(v, int) and v == 0))
    }
    if len(kinds) > 1:
        raise InvalidInput(
            f"train_size={train_size!r}, test_size={test_size!r}, gap={gap!r}: use periods "
            "(int) or spans (timedelta) for all of them, not both"
        )
    for name, value in (("train_size", train_size), ("test_size", test_size), ("gap", gap)):
        if isinstance(value, int) and value < 0:
            raise InvalidInput(f"{name}: must not be negative, got {value}")
        if isinstance(value, timedelta) and value < timedelta(0):
            raise InvalidInput(f"{name}: must not be negative, got {value}")
    return kinds.pop() if kinds else "periods"


def _period_windows(
    n_units: int, n_splits: int, mode: Mode, train_size: int | None, test: int | None, gap: int
) -> list[tuple[int, int, int, int]]:
    """(train_lo, train_hi, test_lo, test_hi) unit-index windows, half-open."""
    if test is None and train_size:
        test = (n_units - train_size - gap) // n_splits
    elif test is None:
        test = n_units // (n_splits + 1)
    if test < 1:
        raise InvalidInput(
            f"n_splits={n_splits}: {n_units} periods are too few for {n_splits} test windows"
        )
    windows = []
    for k in range(n_splits):
        test_lo = n_units - (n_splits - k) * test
        cut = test_lo - gap
        train_lo = cut - train_size if mode == "sliding" and train_size else 0
        needed = max(train_size or 1, 1)
        if train_lo < 0 or cut - train_lo < needed:
            raise InvalidInput(
                f"n_splits={n_splits}, test_size={test}, gap={gap}, train_size={train_size}: "
                f"{n_units} periods are too few"
            )
        windows.append((train_lo, cut, test_lo, test_lo + test))
    return windows


def _span_windows(
    units: np.ndarray,
    n_splits: int,
    mode: Mode,
    train_size: timedelta | None,
    test: timedelta | None,
    gap: timedelta,
) -> list[tuple[int, int, int, int]]:
    """Unit-index windows of right-closed time windows ending at the last time."""
    if not np.issubdtype(units.dtype, np.datetime64):
        raise InvalidInput("timedelta sizes need datetime times")
    first, last = units[0], units[-1]
    test_span = np.timedelta64(test) if test is not None else (last - first) / (n_splits + 1)
    gap64, train64 = np.timedelta64(gap), np.timedelta64(train_size or timedelta(0))
    windows = []
    for k in range(n_splits):
        test_hi_time = last - (n_splits - 1 - k) * test_span
        test_lo_time = test_hi_time - test_span
        test_lo = int(np.searchsorted(units, test_lo_time, side="right"))
        test_hi = int(np.searchsorted(units, test_hi_time, side="right"))
        cut = int(np.searchsorted(units, test_lo_time - gap64, side="right"))
        train_lo = 0
        if mode == "sliding" and train_size is not None:
            train_lo = int(np.searchsorted(units, test_lo_time - gap64 - train64, side="right"))
        if test_hi <= test_lo or cut <= train_lo:
            raise InvalidInput(
                f"n_splits={n_splits}, test_size={test}, gap={gap}, train_size={train_size}: "
                f"the data from {first} to {last} is too short"
            )
        windows.append((train_lo, cut, test_lo, test_hi))
    return windows


def walk_forward_splits(
    times: pd.Series | np.ndarray,
    *,
    n_splits: int,
    mode: Mode = "expanding",
    train_size: Size | None = None,
    test_size: Size | None = None,
    gap: Size = timedelta(0),
    groups: pd.Series | np.ndarray | None = None,
) -> list[Split]:
    """Consecutive test windows at the end of the data, each trained on what came before.

    Args:
        times: one time per row (datetimes, or numbers for period-only splits), any order.
        n_splits: number of test windows; they are consecutive and the last ends at the last
            time.
        mode: ``"expanding"`` (train on everything before the test window minus the gap; then
            ``train_size`` is the least the first window needs) or ``"sliding"`` (train on the
            ``train_size`` just before it; ``train_size`` is then required).
        train_size: periods (int) or span (timedelta) of the training window.
        test_size: periods or span of each test window. Default: with periods, the periods
            left after ``train_size`` and ``gap`` shared evenly, or ``1 / (n_splits + 1)`` of
            them without ``train_size``; with spans, ``1 / (n_splits + 1)`` of the time covered.
        gap: periods or span left out between training and test (every training time is
            before the test window's first time minus the gap).
        groups: one key per row (event_key): each group stays whole on one side.

    Returns:
        One :class:`Split` per test window, in time order.

    Raises:
        InvalidInput: for bad arguments or too little data for the request.
    """
    if n_splits < 1:
        raise InvalidInput(f"n_splits: need at least 1, got {n_splits}")
    if mode not in ("expanding", "sliding"):
        raise InvalidInput(f"mode: {mode!r} is not 'expanding' or 'sliding'")
    if mode == "sliding" and train_size is None:
        raise InvalidInput("train_size: required with mode='sliding'")
    values, tz = _row_times(times)
    row_times, units = _unit_times(values, groups)
    if len(units) < 2:
        raise InvalidInput(f"times: {len(units)} distinct time(s) are too few to split")
    if _kind(train_size, test_size, gap) == "span":
        windows = _span_windows(
            units,
            n_splits,
            mode,
            _as_timedelta(train_size),
            _as_timedelta(test_size),
            _as_timedelta(gap) or timedelta(0),
        )
    else:
        windows = _period_windows(
            len(units), n_splits, mode, _as_int(train_size), _as_int(test_size), _as_int(gap) or 0
        )
    unit_of_row = np.searchsorted(units, row_times)
    return [_split(unit_of_row, row_times, tz, *window) for window in windows]


def _as_timedelta(value: Size | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, np.timedelta64):
        return pd.Timedelta(value).to_pytimedelta()
    return timedelta(0) if value == 0 else None


def _as_int(value: Size | None) -> int | None:
    return None if value is None or isinstance(value, timedelta | np.timedelta64) else int(value)


def _bound(value: Any, tz: Any) -> Any:
    return pd.Timestamp(value).tz_localize("UTC").tz_convert(tz) if tz is not None else value


def _split(
    unit_of_row: np.ndarray,
    row_times: np.ndarray,
    tz: Any,
    lo: int,
    hi: int,
    test_lo: int,
    test_hi: int,
) -> Split:
    train = np.flatnonzero((unit_of_row >= lo) & (unit_of_row < hi))
    test = np.flatnonzero((unit_of_row >= test_lo) & (unit_of_row < test_hi))
    return Split(
        train=train,
        test=test,
        train_start=_bound(row_times[train].min(), tz),
        train_end=_bound(row_times[train].max(), tz),
        test_start=_bound(row_times[test].min(), tz),
        test_end=_bound(row_times[test].max(), tz),
    )


def season_splits(
    seasons: pd.Series | np.ndarray,
    test_seasons: int = 1,
    *,
    mode: Mode = "expanding",
    train_seasons: int | None = None,
) -> list[Split]:
    """Test on each of the last ``test_seasons`` seasons, training on the seasons before it.

    Season labels must sort chronologically (``"2019-20"`` style labels and years do).

    Args:
        seasons: one season label per row.
        test_seasons: how many of the latest seasons are test seasons, one split each.
        mode: ``"expanding"`` (all earlier seasons) or ``"sliding"`` (the last
            ``train_seasons`` of them; required then).
        train_seasons: in sliding mode, the number of training seasons.

    Raises:
        InvalidInput: too few seasons for the request, or bad arguments.
    """
    if test_seasons < 1:
        raise InvalidInput(f"test_seasons: need at least 1, got {test_seasons}")
    if mode not in ("expanding", "sliding"):
        raise InvalidInput(f"mode: {mode!r} is not 'expanding' or 'sliding'")
    window = train_seasons if mode == "sliding" else None
    if mode == "sliding" and (window is None or window < 1):
        raise InvalidInput(f"train_seasons: a positive count is required, got {train_seasons}")
    labels = pd.Series(np.asarray(seasons, dtype=object))
    if labels.isna().any():
        raise InvalidInput(f"seasons: missing value at position {int(labels.isna().argmax())}")
    order = sorted(labels.unique())
    needed = test_seasons + (window or 1)
    if len(order) < needed:
        raise InvalidInput(
            f"test_seasons={test_seasons}: {len(order)} season(s) {order} are too few "
            f"(need {needed})"
        )
    index = labels.map({s: i for i, s in enumerate(order)}).to_numpy()
    splits = []
    for test in range(len(order) - test_seasons, len(order)):
        lo = test - window if window else 0
        train = np.flatnonzero((index >= lo) & (index < test))
        splits.append(
            Split(
                train=train,
                test=np.flatnonzero(index == test),
                train_start=order[lo],
                train_end=order[test - 1],
                test_start=order[test],
                test_end=order[test],
            )
        )
    return splits
