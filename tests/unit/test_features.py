"""Selection features: hand-checked values, no look-ahead, and offline/online identity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.features import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA_VERSION,
    KEY_COLUMNS,
    build_features,
    feature_frame,
)
from betting.features.columns import ELO_HOME_ADVANTAGE, ELO_K, REST_DAYS_CAP
from betting.frames import selection_frame
from betting.simulate import simulate

T0 = pd.Timestamp("2024-08-01 15:00", tz="UTC")
Game = tuple[str, int, str, str, int | None, int | None]  # key, day, home, away, scores

MATCH_PRICES = {"home": 2.0, "draw": 3.4, "away": 3.8, "over": 1.9, "under": 1.95}


def _odds_rows(key: str, market: str, names: list[str], start: pd.Timestamp) -> list[dict]:
    rows = []
    for book, shift in (("b1", 0.0), ("b2", 0.1)):
        for kind, when, move in (("open", start - timedelta(days=2), 0.0), ("close", start, 0.05)):
            for name in names:
                price = MATCH_PRICES[name] + shift - move
                rows.append(
                    {"event_key": key, "market_key": market, "selection": name,
                     "bookmaker": book, "kind": kind, "captured_at": when, "price": price}
                )  # fmt: skip
    return rows


def football_batch(games: Sequence[Game], *, odds: bool = True) -> EventBatch:
    """A batch of football games with a 1X2 and an over/under 2.5 market each."""
    events, markets, selections, prices, results = [], [], [], [], []
    for key, day, home, away, hs, as_ in games:
        start = T0 + timedelta(days=day)
        events.append(
            {"event_key": key, "source": "test", "sport": "football", "competition": "T",
             "season": "2024-25", "starts_at": start, "home": home, "away": away,
             "home_score": hs, "away_score": as_}
        )  # fmt: skip
        markets += [
            {"event_key": key, "market_key": "1x2", "type": "1x2", "line": None},
            {"event_key": key, "market_key": "total:2.5", "type": "total", "line": 2.5},
        ]
        for market, names, who in (
            ("1x2", ["home", "draw", "away"], [home, None, away]),
            ("total:2.5", ["over", "under"], [None, None]),
        ):
            for pos, (name, participant) in enumerate(zip(names, who, strict=True)):
                selections.append(
                    {"event_key": key, "market_key": market, "name": name, "position": pos,
                     "participant": participant, "true_probability": None}
                )  # fmt: skip
            if odds:
                prices += _odds_rows(key, market, names, start)
        if hs is not None and as_ is not None:
            winner = "home" if hs > as_ else "away" if hs < as_ else "draw"
            results.append({"event_key": key, "market_key": "1x2", "winner": winner})
            total = "over" if hs + as_ > 2.5 else "under"
            results.append({"event_key": key, "market_key": "total:2.5", "winner": total})
    batch = EventBatch()
    batch.events = pd.DataFrame(events, columns=batch.events.columns)
    batch.markets = pd.DataFrame(markets, columns=batch.markets.columns)
    batch.selections = pd.DataFrame(selections, columns=batch.selections.columns)
    batch.odds = pd.DataFrame(prices, columns=batch.odds.columns)
    batch.results = pd.DataFrame(results, columns=batch.results.columns)
    batch.validate()
    return batch


def features_of(games: Sequence[Game], **kwargs: bool) -> pd.DataFrame:
    return build_features(selection_frame(football_batch(games, **kwargs)))


def row(frame: pd.DataFrame, event_key: str, selection: str) -> pd.Series:
    hit = frame[(frame["event_key"] == event_key) & (frame["selection"] == selection)]
    assert len(hit) == 1
    return hit.iloc[0]


def expected(rating: float, other: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((other - rating) / 400.0))


@pytest.fixture(scope="module")
def season() -> pd.DataFrame:
    """Two simulated seasons of an eight-team league: 112 games, 560 selections."""
    return selection_frame(simulate("football", 2, seed=7, teams=8))


def test_feature_columns_are_all_present_and_float(season: pd.DataFrame) -> None:
    built = build_features(season)
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert all(built[c].dtype == np.float64 for c in FEATURE_COLUMNS)
    assert list(built.columns[: len(season.columns)]) == list(season.columns)
    assert built.index.equals(season.index)
    assert FEATURE_SCHEMA_VERSION.isdigit()
    # Only odds features may be missing when every price is there; history means are NaN
    # only before a participant's first settled event.
    assert not built[["elo", "elo_diff", "streak", "rest_days", "field_size"]].isna().any().any()
    assert not built[["open_implied", "close_implied", "close_overround"]].isna().any().any()
    sums = built.groupby(["event_key", "market_key"])["close_implied"].sum()
    np.testing.assert_allclose(sums, 1.0)


def test_feature_frame_has_keys_then_features(season: pd.DataFrame) -> None:
    out = feature_frame(season)
    assert list(out.columns) == KEY_COLUMNS + FEATURE_COLUMNS
    assert len(out) == len(season)


def test_elo_after_two_games_matches_hand_computation() -> None:
    built = features_of(
        [
            ("g1", 0, "A", "B", 2, 0),  # A wins at home
            ("g2", 3, "B", "C", 1, 1),  # B draws C at home
            ("g3", 7, "A", "C", None, None),  # to be played: read ratings before it
        ]
    )
    d1 = ELO_K * (1.0 - expected(1500 + ELO_HOME_ADVANTAGE, 1500))
    b_rating = 1500 - d1
    d2 = ELO_K * (0.5 - expected(b_rating + ELO_HOME_ADVANTAGE, 1500))
    a, c = 1500 + d1, 1500 - d2
    home, away, draw = (row(built, "g3", s) for s in ("home", "away", "draw"))
    assert home["elo"] == pytest.approx(a)
    assert away["elo"] == pytest.approx(c)
    assert home["elo_diff"] == pytest.approx(a - c)
    assert away["opp_elo"] == pytest.approx(a)
    assert home["elo_expected"] == pytest.approx(expected(a + ELO_HOME_ADVANTAGE, c))
    assert away["elo_expected"] == pytest.approx(1 - home["elo_expected"])
    assert draw["elo"] == pytest.approx((a + c) / 2)
    assert draw["elo_diff"] == pytest.approx(-abs(a - c))
    assert draw["elo_expected"] == pytest.approx(1 - abs(2 * home["elo_expected"] - 1))
    assert row(built, "g2", "home")["elo"] == pytest.approx(b_rating)
    assert row(built, "g1", "home")["elo"] == 1500.0


def test_form_streak_rest_and_experience_on_a_hand_made_sequence() -> None:
    scores = [(2, 0), (1, 0), (0, 1), (1, 1), (3, 0), (2, 1), (0, 2), (None, None), (None, None)]
    days = [0, 3, 10, 50, 53, 54, 60, 61, 62]
    games = [
        (f"g{i}", day, "T", f"O{i}", hs, as_)
        for i, (day, (hs, as_)) in enumerate(zip(days, scores, strict=True))
    ]
    built = features_of(games)
    home = [row(built, f"g{i}", "home") for i in range(len(games))]
    assert [h["experience"] for h in home] == [0, 1, 2, 3, 4, 5, 6, 7, 7]
    assert [h["streak"] for h in home] == [0, 1, 2, -1, -2, 1, 2, -1, -1]
    assert [h["rest_days"] for h in home] == [REST_DAYS_CAP, 3, 7, REST_DAYS_CAP, 3, 1, 6, 1, 2]
    assert math.isnan(home[0]["form5"]) and math.isnan(home[0]["win_pct"])
    assert home[6]["form5"] == pytest.approx(3.5 / 5)
    assert home[7]["form5"] == pytest.approx(2.5 / 5)
    assert home[7]["form10"] == pytest.approx(4.5 / 7)
    assert home[7]["ppg"] == pytest.approx(4.5 / 7)
    assert home[7]["win_pct"] == pytest.approx(4 / 7)
    assert home[7]["goals_for"] == pytest.approx(9 / 7)
    assert home[7]["goals_against"] == pytest.approx(5 / 7)
    assert home[8]["form5"] == home[7]["form5"]  # an unsettled event is not history
    # The opponents are newcomers: no history, so NaN means and zero experience.
    away = row(built, "g7", "away")
    assert away["experience"] == 0 and math.isnan(away["form5"])
    assert away["rest_days"] == REST_DAYS_CAP
    assert row(built, "g7", "home")["opp_experience"] == 0


def test_events_sharing_a_start_time_never_see_each_other() -> None:
    built = features_of(
        [("g1", 0, "A", "B", 1, 0), ("g2", 0, "A", "C", 0, 1), ("g3", 1, "A", "B", None, None)]
    )
    for key in ("g1", "g2"):
        home = row(built, key, "home")
        assert home["elo"] == 1500.0 and home["experience"] == 0 and home["h2h_meetings"] == 0
    later = row(built, "g3", "home")
    assert later["experience"] == 2 and later["h2h_meetings"] == 1 and later["streak"] == -1
    assert later["rest_days"] == 1


def test_head_to_head_record() -> None:
    built = features_of(
        [
            ("m1", 0, "A", "B", 1, 0),
            ("m2", 7, "B", "A", 1, 1),
            ("m3", 14, "A", "B", 2, 0),
            ("x1", 15, "A", "C", 0, 3),  # another opponent: not part of A-B meetings
            ("m4", 21, "B", "A", None, None),
        ]
    )
    home, draw, away, over = (row(built, "m4", s) for s in ("home", "draw", "away", "over"))
    assert home["h2h_meetings"] == 3 and away["h2h_meetings"] == 3
    assert away["h2h_share"] == pytest.approx(2.5 / 3)  # A is away in m4
    assert home["h2h_share"] == pytest.approx(0.5 / 3)
    assert draw["h2h_share"] == pytest.approx(1 / 3)
    assert over["h2h_share"] == 0.5 and over["h2h_meetings"] == 3
    first = row(built, "m1", "home")
    assert first["h2h_meetings"] == 0 and math.isnan(first["h2h_share"])


def test_selection_indicators_field_size_and_line() -> None:
    built = features_of([("g", 0, "A", "B", 1, 0)])
    flags = ["is_home", "is_draw", "is_away", "is_over", "is_under", "is_runner"]
    assert built[flags].to_numpy().tolist() == np.vstack([np.eye(5), np.zeros(5)]).T.tolist()
    assert built["field_size"].tolist() == [3, 3, 3, 2, 2]
    assert built["market_line"].tolist() == [0, 0, 0, 2.5, 2.5]


def _settle(frame: pd.DataFrame, hit: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """Give the events where ``hit`` holds new random scores and matching winners."""
    out = frame.copy()
    keys = out.loc[hit, "event_key"].unique()
    new = pd.DataFrame(
        {"home_score": rng.integers(0, 5, len(keys)), "away_score": rng.integers(0, 5, len(keys))},
        index=keys,
    )
    rows = out["event_key"].isin(keys)
    hs = out.loc[rows, "event_key"].map(new["home_score"]).astype(float)
    as_ = out.loc[rows, "event_key"].map(new["away_score"]).astype(float)
    outcome = np.select([hs > as_, hs < as_], ["home", "away"], "draw")
    total = np.where(hs + as_ > out.loc[rows, "line"].fillna(0), "over", "under")
    winner = np.where(out.loc[rows, "market_type"] == "1x2", outcome, total)
    out.loc[rows, "home_score"], out.loc[rows, "away_score"] = hs, as_
    out.loc[rows, "won"] = (out.loc[rows, "selection"].to_numpy() == winner).astype(float)
    return out


def test_no_look_ahead_later_results_never_change_earlier_features(
    season: pd.DataFrame,
) -> None:
    rng = np.random.default_rng(0)
    cutoff = season["starts_at"].iloc[len(season) // 2]
    before = build_features(season)
    altered = _settle(season, season["starts_at"] >= cutoff, rng)
    assert not altered["won"].equals(season["won"])
    after = build_features(altered)
    kept = season["starts_at"] <= cutoff  # events at the cutoff were altered themselves
    pd.testing.assert_frame_equal(
        before.loc[kept, FEATURE_COLUMNS], after.loc[kept, FEATURE_COLUMNS], check_exact=True
    )
    later = season["starts_at"] > cutoff
    assert not before.loc[later, "elo"].equals(after.loc[later, "elo"])
    unsettled = altered.copy()
    unsettled.loc[season["starts_at"] >= cutoff, ["home_score", "away_score", "won"]] = np.nan
    pd.testing.assert_frame_equal(
        before.loc[kept, FEATURE_COLUMNS],
        build_features(unsettled).loc[kept, FEATURE_COLUMNS],
        check_exact=True,
    )


def test_an_events_own_result_never_changes_its_own_features(season: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    before = build_features(season)
    for key in season["event_key"].drop_duplicates().iloc[[5, 40, -1]]:
        own = season["event_key"] == key
        after = build_features(_settle(season, own, rng))
        pd.testing.assert_frame_equal(
            before.loc[own, FEATURE_COLUMNS], after.loc[own, FEATURE_COLUMNS], check_exact=True
        )


def test_offline_and_online_features_of_an_event_are_identical(season: pd.DataFrame) -> None:
    offline = build_features(season)
    for key in season["event_key"].drop_duplicates().iloc[[0, 30, 75, -1]]:
        event = season[season["event_key"] == key]
        history = season[season["starts_at"] < event["starts_at"].iloc[0]]
        unplayed = event.assign(home_score=np.nan, away_score=np.nan, won=np.nan)
        for request in (event, unplayed):
            online = build_features(pd.concat([history, request]))
            pd.testing.assert_frame_equal(
                offline.loc[event.index, FEATURE_COLUMNS],
                online.loc[event.index, FEATURE_COLUMNS],
                check_exact=True,
            )
    first = build_features(season[season["event_key"] == season["event_key"].iloc[0]])
    assert (first["experience"] == 0).all() and (first["elo"] == 1500).all()


def test_row_order_does_not_matter(season: pd.DataFrame) -> None:
    ordered = build_features(season)
    shuffled = build_features(season.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(
        ordered[FEATURE_COLUMNS], shuffled.loc[ordered.index, FEATURE_COLUMNS], rtol=1e-12
    )


def _race_batch() -> EventBatch:
    races = [("r1", 0, ["R1", "R2", "R3"], "R1"), ("r2", 7, ["R1", "R2", "R4"], None)]
    batch = EventBatch()
    batch.events = pd.DataFrame(
        [{"event_key": k, "source": "test", "sport": "racing", "competition": "T",
          "season": "2024", "starts_at": T0 + timedelta(days=d), "home": None, "away": None,
          "home_score": None, "away_score": None} for k, d, _, _ in races],
        columns=batch.events.columns,
    )  # fmt: skip
    batch.markets = pd.DataFrame(
        [{"event_key": k, "market_key": "win", "type": "win", "line": None} for k, *_ in races]
    )
    batch.selections = pd.DataFrame(
        [{"event_key": k, "market_key": "win", "name": r, "position": i, "participant": r,
          "true_probability": None} for k, _, runners, _ in races for i, r in enumerate(runners)]
    )  # fmt: skip
    batch.results = pd.DataFrame(
        [{"event_key": k, "market_key": "win", "winner": w} for k, _, _, w in races if w]
    )
    batch.validate()
    return batch


def test_a_race_frame_gets_winner_versus_field_elo() -> None:
    built = build_features(selection_frame(_race_batch()))
    r2 = built[built["event_key"] == "r2"].set_index("selection")
    delta = ELO_K / 2 * 0.5  # two losers share K; each pair was an even game
    assert r2.loc["R1", "elo"] == pytest.approx(1500 + 2 * delta)
    assert r2.loc["R2", "elo"] == pytest.approx(1500 - delta)
    assert r2.loc["R4", "elo"] == 1500.0
    assert r2.loc["R1", "opp_elo"] == pytest.approx(1500 - delta / 2)
    assert r2["elo_expected"].sum() == pytest.approx(1.0)
    assert r2.loc["R1", "win_pct"] == 1.0 and r2.loc["R2", "win_pct"] == 0.0
    assert r2.loc["R1", "streak"] == 1 and r2.loc["R2", "streak"] == -1
    assert (r2["is_runner"] == 1).all() and (r2["field_size"] == 3).all()
    assert r2["h2h_meetings"].eq(0).all() and r2["goals_for"].isna().all()
    assert built[FEATURE_COLUMNS].dtypes.eq(np.float64).all()
    assert built["close_implied"].isna().all()


def test_simulated_races_build(season: pd.DataFrame) -> None:
    races = selection_frame(simulate("racing", 1, seed=2, events_per_season=20))
    built = build_features(races)
    assert (built["is_runner"] == 1).all()
    sums = built.groupby("event_key")["elo_expected"].sum()
    np.testing.assert_allclose(sums, 1.0)


def test_rows_without_odds_get_nan_odds_features_not_errors() -> None:
    games = [("g1", 0, "A", "B", 2, 0), ("g2", 3, "B", "A", None, None)]
    built = features_of(games, odds=False)
    odds_features = ["open_implied", "close_implied", "implied_move", "log_odds_move",
                     "close_implied_std", "open_overround", "close_overround"]  # fmt: skip
    assert built[odds_features].isna().all().all()
    assert not built["elo"].isna().any()
    frame = selection_frame(football_batch(games))
    bare = frame.drop(columns=[c for c in frame.columns if c.startswith(("open_", "close_"))])
    assert build_features(bare)[odds_features].isna().all().all()


def test_a_market_with_a_missing_price_has_nan_implied_probabilities() -> None:
    frame = selection_frame(football_batch([("g1", 0, "A", "B", 2, 0)]))
    frame.loc[frame["selection"] == "draw", ["open_mean", "pre_close_mean", "close_mean"]] = np.nan
    built = build_features(frame)
    match = built[built["market_key"] == "1x2"]
    assert match["close_implied"].isna().all() and match["close_overround"].isna().all()
    assert match["log_odds_move"].notna().sum() == 2
    total = built[built["market_key"] == "total:2.5"]
    assert total["close_implied"].sum() == pytest.approx(1.0)


def test_opening_price_falls_back_to_pre_close_and_closing_to_opening() -> None:
    frame = selection_frame(football_batch([("g1", 0, "A", "B", 2, 0)]))
    frame["pre_close_mean"] = frame["open_mean"]
    frame["open_mean"] = np.nan
    frame.loc[frame["market_key"] == "total:2.5", "close_mean"] = np.nan
    built = build_features(frame)
    total = built[built["market_key"] == "total:2.5"]
    assert (total["log_odds_move"] == 0).all()
    assert total["open_implied"].tolist() == total["close_implied"].tolist()


def test_missing_columns_and_start_times_are_refused(season: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="participant"):
        build_features(season.drop(columns=["participant"]))
    broken = season.copy()
    broken.loc[broken.index[0], "starts_at"] = pd.NaT
    with pytest.raises(InvalidInput, match="starts_at"):
        build_features(broken)


def test_an_empty_frame_gives_empty_features(season: pd.DataFrame) -> None:
    built = build_features(season.iloc[:0])
    assert built.empty and set(FEATURE_COLUMNS) <= set(built.columns)
