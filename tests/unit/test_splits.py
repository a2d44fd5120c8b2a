"""Walk-forward and season splits: order, no overlap, gaps, whole groups, window sizes."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from betting.errors import InvalidInput
from betting.splits import Split, season_splits, walk_forward_splits

DAYS = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC")


@pytest.fixture
def events() -> pd.DataFrame:
    """40 match days, 1-3 events a day, 3 selection rows per event, shuffled rows."""
    rng = np.random.default_rng(0)
    per_day = rng.integers(1, 4, len(DAYS))
    starts = np.repeat(DAYS, per_day)
    keys = [f"e{i:03d}" for i in range(len(starts))]
    frame = pd.DataFrame({"event_key": np.repeat(keys, 3), "starts_at": np.repeat(starts, 3)})
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def check_split(split: Split, times: pd.Series, groups: pd.Series | None = None) -> None:
    assert len(split.train) and len(split.test)
    assert not set(split.train) & set(split.test)
    assert np.all(np.diff(split.train) > 0) and np.all(np.diff(split.test) > 0)
    assert times.iloc[split.train].max() < times.iloc[split.test].min()
    assert split.train_end == times.iloc[split.train].max()
    assert split.test_start == times.iloc[split.test].min()
    if groups is not None:
        train_groups, test_groups = set(groups.iloc[split.train]), set(groups.iloc[split.test])
        assert not train_groups & test_groups
        for side, keys in ((split.train, train_groups), (split.test, test_groups)):
            assert len(side) == groups.isin(keys).sum()  # every row of a group on its side


def test_expanding_splits_grow_and_test_windows_are_consecutive(events: pd.DataFrame) -> None:
    times = events["starts_at"]
    splits = walk_forward_splits(times, n_splits=4, groups=events["event_key"])
    assert len(splits) == 4
    for split in splits:
        check_split(split, times, events["event_key"])
    sizes = [len(s.train) for s in splits]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    for earlier, later in itertools.pairwise(splits):
        assert set(earlier.train) < set(later.train)
        assert set(earlier.test) <= set(later.train)
        next_day = DAYS[DAYS.get_loc(earlier.test_end) + 1]
        assert later.test_start == next_day  # consecutive: no day skipped
    assert splits[-1].test_end == times.max()
    assert {DAYS.get_loc(s.test_start) for s in splits} == {8, 16, 24, 32}  # 40 // 5 days each


def test_sliding_splits_keep_a_constant_number_of_periods(events: pd.DataFrame) -> None:
    times = events["starts_at"]
    splits = walk_forward_splits(times, n_splits=3, mode="sliding", train_size=10, test_size=5)
    for split in splits:
        check_split(split, times)
        assert times.iloc[split.train].nunique() == 10
        assert times.iloc[split.test].nunique() == 5
        assert split.test_start - split.train_start == timedelta(days=10)
    assert splits[0].train_start == DAYS[15]


def test_sliding_spans_keep_a_constant_time_window(events: pd.DataFrame) -> None:
    times = events["starts_at"]
    splits = walk_forward_splits(
        times, n_splits=3, mode="sliding", train_size=timedelta(days=7),
        test_size=timedelta(days=5), gap=timedelta(days=2),
    )  # fmt: skip
    for split in splits:
        check_split(split, times)
        assert split.train_end - split.train_start == timedelta(days=6)
        assert split.test_end - split.test_start == timedelta(days=4)
        assert split.test_start - split.train_end > timedelta(days=2)
    assert splits[-1].test_end == DAYS[-1]


@pytest.mark.parametrize("gap", [3, timedelta(days=3)])
def test_the_gap_is_left_out_between_train_and_test(
    events: pd.DataFrame, gap: int | timedelta
) -> None:
    times = events["starts_at"]
    size: int | timedelta = 5 if isinstance(gap, int) else timedelta(days=5)
    splits = walk_forward_splits(times, n_splits=3, test_size=size, gap=gap)
    for split in splits:
        check_split(split, times)
        assert split.test_start - split.train_end == timedelta(days=4)  # three days left out


def test_rows_of_one_group_stay_together_even_when_their_times_differ() -> None:
    # Event "b" has rows at two times (odds of several snapshots, say); it sits at its first.
    times = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04",
                                      "2024-01-02", "2024-01-05"], utc=True))  # fmt: skip
    groups = pd.Series(["a", "b", "c", "d", "b", "e"])
    for split in walk_forward_splits(times, n_splits=2, test_size=1, groups=groups):
        assert not set(groups.iloc[split.train]) & set(groups.iloc[split.test])
    last = walk_forward_splits(times, n_splits=1, test_size=3, groups=groups)[0]
    assert set(groups.iloc[last.test]) == {"c", "d", "e"}
    assert set(last.train) == {0, 1, 4}


def test_numeric_times_split_by_periods() -> None:
    rounds = np.repeat(np.arange(12), 2)
    splits = walk_forward_splits(rounds, n_splits=3, test_size=2)
    assert [(s.test_start, s.test_end) for s in splits] == [(6, 7), (8, 9), (10, 11)]
    assert [len(s.train) for s in splits] == [12, 16, 20]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_splits": 40},  # 40 days // 41: no day per test window
        {"n_splits": 5, "test_size": 8},  # 5 windows of 8 days leave no training day
        {"n_splits": 3, "mode": "sliding", "train_size": 30, "test_size": 5},
        {"n_splits": 3, "mode": "sliding"},  # sliding needs train_size
        {"n_splits": 0},
        {"n_splits": 3, "mode": "rolling"},
        {"n_splits": 3, "test_size": 5, "gap": timedelta(days=1)},  # periods mixed with spans
        {"n_splits": 3, "test_size": timedelta(days=20)},
        {"n_splits": 2, "test_size": 5, "train_size": 40},
    ],
)
def test_impossible_requests_are_refused(events: pd.DataFrame, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        walk_forward_splits(events["starts_at"], **kwargs)


def test_timedelta_sizes_need_datetimes() -> None:
    with pytest.raises(InvalidInput, match="datetime"):
        walk_forward_splits(np.arange(10), n_splits=2, test_size=timedelta(days=1))


def test_season_splits_train_on_earlier_seasons() -> None:
    seasons = pd.Series(["2021-22"] * 3 + ["2020-21"] * 2 + ["2023-24"] * 4 + ["2022-23"] * 2)
    splits = season_splits(seasons, test_seasons=2)
    assert [(s.test_start, s.train_start, s.train_end) for s in splits] == [
        ("2022-23", "2020-21", "2021-22"),
        ("2023-24", "2020-21", "2022-23"),
    ]
    for split in splits:
        assert not set(split.train) & set(split.test)
        assert (seasons.iloc[split.train] < split.test_start).all()
        assert (seasons.iloc[split.test] == split.test_start).all()
    assert [len(s.train) for s in splits] == [5, 7]
    sliding = season_splits(seasons, test_seasons=2, mode="sliding", train_seasons=1)
    assert [len(s.train) for s in sliding] == [3, 2]
    assert [s.train_start for s in sliding] == ["2021-22", "2022-23"]


def test_season_splits_refuse_too_few_seasons() -> None:
    seasons = pd.Series(["2020-21", "2021-22"])
    with pytest.raises(InvalidInput, match="too few"):
        season_splits(seasons, test_seasons=2)
    with pytest.raises(InvalidInput, match="too few"):
        season_splits(seasons, mode="sliding", train_seasons=2)
    with pytest.raises(InvalidInput):
        season_splits(seasons, test_seasons=0)
