"""The feature state: applying settlements one by one and reading new events gives, on every
event of multi-season leagues and of real football-data seasons, the rows of the batch features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from betting.batch import EventBatch
from betting.features import FEATURE_COLUMNS, build_features
from betting.features.build import frame_events, read_features
from betting.features.snapshots import Snapshot, SnapshotMismatch, fold_history
from betting.features.state import FeatureState, StaleState
from betting.frames import selection_frame
from betting.ingest.football_data import read_football_data
from betting.simulate import simulate

FD = Path(__file__).resolve().parents[1] / "fixtures" / "football-data"


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    np.testing.assert_array_equal(a[FEATURE_COLUMNS].to_numpy(), b[FEATURE_COLUMNS].to_numpy())


def _online_rows(frame: pd.DataFrame, *, roundtrip_every: int = 0) -> pd.DataFrame:
    """Each event's rows read from a state holding only the earlier settlements, the events
    then applied one at a time (latest first within a start time) as results come in."""
    state = FeatureState()
    out = []
    by_start = frame.groupby("starts_at", sort=True)
    for n, (_, block) in enumerate(by_start):
        unplayed = block.assign(home_score=np.nan, away_score=np.nan, won=np.nan)
        out.append(read_features(unplayed, state.read))
        _, _, events = frame_events(block)
        for event in reversed(events):  # results of one start time arrive in any order
            state.update(event)
        if roundtrip_every and n % roundtrip_every == 0:
            state = FeatureState.from_bytes(state.to_bytes())
    return pd.concat(out).loc[frame.index]


@pytest.mark.parametrize("sport", ["football", "moneyline", "racing"])
def test_settlements_applied_one_by_one_give_the_batch_features(sport: str) -> None:
    seasons = {"football": 3, "moneyline": 2, "racing": 1}[sport]
    teams = 8 if sport != "racing" else None
    frame = selection_frame(simulate(sport, seasons, seed=11, teams=teams))
    _same(_online_rows(frame, roundtrip_every=7), build_features(frame))


def test_real_seasons_folded_online_equal_the_batch_features() -> None:
    batches = [
        read_football_data(FD / name, on_invalid_price="drop")
        for name in ("E0_2003-04.csv", "E0_2014-15.csv", "E0_2024-25.csv", "D1_2019-20.csv")
    ]
    frame = selection_frame(EventBatch.concat(batches))
    _same(_online_rows(frame), build_features(frame))


def test_a_state_folded_in_pieces_equals_one_fold() -> None:
    frame = selection_frame(simulate("football", 2, seed=4, teams=6))
    starts = frame["starts_at"].drop_duplicates()
    cut = starts.iloc[len(starts) // 2]
    whole = FeatureState()
    build_features(frame, whole)
    pieces = FeatureState()
    first = fold_history(frame[frame["starts_at"] < cut], pieces)
    second = fold_history(frame[frame["starts_at"] >= cut], pieces)
    assert pieces.to_bytes() == whole.to_bytes()
    assert set(first) | set(second) == set(frame["event_key"])
    assert pieces.applied == frame["event_key"].nunique()


def test_snapshots_give_a_passed_event_its_offline_rows() -> None:
    frame = selection_frame(simulate("football", 1, seed=5, teams=6))
    state = FeatureState()
    snapshots = fold_history(frame, state)
    offline = build_features(frame)
    key = frame["event_key"].iloc[len(frame) // 2]
    event = frame[frame["event_key"] == key]
    snapshot = Snapshot.from_bytes(snapshots[key].to_bytes())
    _same(read_features(event, snapshot.read), offline.loc[event.index])
    other = frame[frame["event_key"] != key].iloc[:5]
    with pytest.raises(SnapshotMismatch):
        read_features(other.assign(event_key=key), snapshot.read)


def test_the_state_refuses_events_it_has_moved_past() -> None:
    frame = selection_frame(simulate("football", 1, seed=6, teams=4))
    state = FeatureState()
    build_features(frame, state)
    first = frame[frame["event_key"] == frame["event_key"].iloc[0]]
    with pytest.raises(StaleState, match="before the state's newest start time"):
        read_features(first, state.read)
    with pytest.raises(StaleState):
        build_features(first, state)


def test_a_settlement_seen_twice_counts_once() -> None:
    frame = selection_frame(simulate("football", 1, seed=7, teams=4))
    once, twice = FeatureState(), FeatureState()
    build_features(frame, once)
    _, _, events = frame_events(frame)
    for event in events:
        twice.update(event)
        twice.update(event)
    assert twice.to_bytes() == once.to_bytes()


def test_memory_grows_with_participants_not_events() -> None:
    small, large = FeatureState(), FeatureState()
    build_features(selection_frame(simulate("football", 1, seed=8, teams=10)), small)
    build_features(selection_frame(simulate("football", 8, seed=8, teams=10)), large)
    assert len(large.participants) == len(small.participants) == 10
    assert len(large.pairs) == len(small.pairs) == 90
    assert len(large.to_bytes()) < 1.2 * len(small.to_bytes())
