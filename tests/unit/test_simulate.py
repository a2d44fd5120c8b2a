"""The simulator: well-formed, reproducible batches whose truth and prices behave as designed."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.simulate import SPORTS, SimulationConfig, simulate
from betting.simulate.bookmakers import power_margin
from betting.simulate.football import match_odds_probabilities, over_under_probabilities
from betting.simulate.league import double_round_robin

FRAMES = ("events", "markets", "selections", "odds", "results")
MARKET = ["event_key", "market_key"]
SELECTION = ["event_key", "market_key", "selection"]


@pytest.fixture(scope="module")
def football() -> EventBatch:
    """Ten seasons of a 20-team league: 3,800 games, enough for the statistical checks."""
    return simulate("football", seasons=10, seed=3, teams=20)


@pytest.fixture(scope="module")
def small() -> dict[str, EventBatch]:
    """A few seasons of small leagues of every sport."""
    return {
        "football": simulate("football", seasons=3, seed=11, teams=10),
        "racing": simulate("racing", seasons=3, seed=11, events_per_season=200),
        "moneyline": simulate("moneyline", seasons=3, seed=11, teams=10),
    }


def selections_with_outcome(batch: EventBatch) -> pd.DataFrame:
    """One row per selection with ``won`` (1.0 for the market's winner, else 0.0)."""
    sel = batch.selections.rename(columns={"name": "selection"})
    won = batch.results.rename(columns={"winner": "selection"}).assign(won=1.0)
    return sel.merge(won, on=SELECTION, how="left").fillna({"won": 0.0})


def priced(batch: EventBatch) -> pd.DataFrame:
    """Odds rows with the selection's truth, outcome, the book's overround and margin-free
    probability (plain normalisation of 1/price within the book's market and kind)."""
    odds = batch.odds.merge(selections_with_outcome(batch), on=SELECTION)
    odds["implied"] = 1.0 / odds["price"]
    book = [*MARKET, "bookmaker", "kind"]
    odds["book_sum"] = odds.groupby(book)["implied"].transform("sum")
    odds["fair"] = odds["implied"] / odds["book_sum"]
    return odds


def test_match_odds_probabilities_sum_the_score_grid() -> None:
    home_rate, away_rate = np.array([1.6, 0.4]), np.array([1.1, 2.9])
    probs = match_odds_probabilities(home_rate, away_rate, max_goals=12)
    for i in range(2):
        grid = np.outer(
            [np.exp(-home_rate[i]) * home_rate[i] ** k / math.factorial(k) for k in range(25)],
            [np.exp(-away_rate[i]) * away_rate[i] ** k / math.factorial(k) for k in range(25)],
        )
        expected = [np.tril(grid, -1).sum(), np.trace(grid), np.triu(grid, 1).sum()]
        np.testing.assert_allclose(probs[i], expected, atol=1e-5)
    under = over_under_probabilities(np.array([2.0]), 2.5)[0, 1]
    assert under == pytest.approx(np.exp(-2.0) * (1 + 2.0 + 2.0))


def test_power_margin_hits_the_overround_and_shades_longshots() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.5, 0.0]])
    present = np.array([[True, True, True], [True, True, False]])
    implied = power_margin(probs, present, np.array([0.05, 0.08]))
    np.testing.assert_allclose(implied.sum(axis=1), [1.05, 1.08])
    assert implied[1, 2] == 0.0
    ratio = implied[0] / probs[0]
    assert ratio[2] > ratio[1] > ratio[0] > 1.0


@pytest.mark.parametrize("n_teams", [2, 5, 10])
def test_double_round_robin_meets_every_opponent_home_and_away(n_teams: int) -> None:
    fixtures = double_round_robin(n_teams)
    pairs = {tuple(p) for p in fixtures.reshape(-1, 2).tolist()}
    assert len(pairs) == fixtures.shape[0] * fixtures.shape[1] == n_teams * (n_teams - 1)
    assert all(len(set(r.ravel().tolist())) == r.size for r in fixtures)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sport": "cricket"},
        {"seasons": 0},
        {"bookmakers": 0},
        {"teams": 1},
        {"events_per_season": 0},
        {"start_year": 1800},
        {"sport": "racing", "teams": 10},
        {"sport": "football", "teams": 200},
    ],
)
def test_impossible_settings_are_rejected(kwargs: dict) -> None:
    args = {"sport": "football", "seasons": 1, "seed": 1} | kwargs
    with pytest.raises(InvalidInput):
        simulate(**args)


def test_unknown_sport_is_named_in_the_error() -> None:
    with pytest.raises(InvalidInput, match="cricket"):
        SimulationConfig(sport="cricket", seasons=1, seed=1)


@pytest.mark.parametrize("sport", SPORTS)
def test_batches_validate(small: dict[str, EventBatch], sport: str) -> None:
    batch = small[sport]
    batch.validate()
    assert len(batch) > 0
    assert set(batch.events["sport"]) == {sport}
    assert set(batch.events["source"]) == {"simulator"}


@pytest.mark.parametrize("sport", SPORTS)
def test_same_seed_same_batch_other_seed_other_batch(sport: str) -> None:
    first = simulate(sport, seasons=2, seed=5, teams=16, events_per_season=60)
    again = simulate(sport, seasons=2, seed=5, teams=16, events_per_season=60)
    other = simulate(sport, seasons=2, seed=6, teams=16, events_per_season=60)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.selections["true_probability"].equals(other.selections["true_probability"])
    assert not first.odds["price"].equals(other.odds["price"])


@pytest.mark.parametrize("sport", SPORTS)
def test_true_probabilities_sum_to_one_per_market(small: dict[str, EventBatch], sport: str) -> None:
    sel = small[sport].selections
    assert (sel["true_probability"] > 0).all()
    sums = sel.groupby(MARKET)["true_probability"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)


@pytest.mark.parametrize("sport", SPORTS)
def test_every_market_is_settled_with_exactly_one_winner(
    small: dict[str, EventBatch], sport: str
) -> None:
    batch = small[sport]
    winners = selections_with_outcome(batch).groupby(MARKET)["won"].sum()
    assert len(winners) == len(batch.markets)
    assert (winners == 1.0).all()


def test_event_keys_seasons_and_start_times(small: dict[str, EventBatch]) -> None:
    for sport, batch in small.items():
        events = batch.events
        pattern = re.compile(rf"sim:{sport}:s11:(\d{{4}}-\d{{2}}):\d{{6}}")
        seasons = [
            m.group(1) if (m := pattern.fullmatch(key)) else None for key in events["event_key"]
        ]
        assert seasons == events["season"].tolist()
        assert set(events["season"]) == {"2020-21", "2021-22", "2022-23"}
        assert str(events["starts_at"].dt.tz) == "UTC"
        assert events["starts_at"].is_monotonic_increasing
        assert events.groupby(events["starts_at"].dt.date).size().max() > 1


def test_markets_and_selections_follow_the_contract(small: dict[str, EventBatch]) -> None:
    fb = small["football"]
    assert set(fb.markets["market_key"]) == {"1x2", "total:2.5"}
    assert fb.markets.loc[fb.markets["market_key"] == "total:2.5", "line"].eq(2.5).all()
    assert fb.markets.loc[fb.markets["market_key"] == "1x2", "line"].isna().all()
    sel = fb.selections.merge(fb.events[["event_key", "home", "away"]], on="event_key")
    one_x_two = sel[sel["market_key"] == "1x2"]
    by_name = {name: rows for name, rows in one_x_two.groupby("name")}
    assert (by_name["home"]["position"] == 0).all()
    assert (by_name["home"]["participant"] == by_name["home"]["home"]).all()
    assert (by_name["draw"]["position"] == 1).all()
    assert by_name["draw"]["participant"].isna().all()
    assert (by_name["away"]["participant"] == by_name["away"]["away"]).all()
    assert set(sel.loc[sel["market_key"] == "total:2.5", "name"]) == {"over", "under"}

    racing = small["racing"]
    assert set(racing.markets["type"]) == {"win"}
    assert racing.events[["home", "away", "home_score", "away_score"]].isna().all().all()
    assert (racing.selections["participant"] == racing.selections["name"]).all()

    moneyline = small["moneyline"]
    assert set(moneyline.markets["type"]) == {"moneyline"}
    assert set(moneyline.selections["name"]) == {"home", "away"}


def test_football_results_follow_the_goals(small: dict[str, EventBatch]) -> None:
    fb = small["football"]
    results = fb.results.pivot(index="event_key", columns="market_key", values="winner")
    events = fb.events.set_index("event_key").loc[results.index]
    home, away = events["home_score"].astype(int), events["away_score"].astype(int)
    expected = np.where(home > away, "home", np.where(home == away, "draw", "away"))
    assert (results["1x2"] == expected).all()
    assert (results["total:2.5"] == np.where(home + away > 2.5, "over", "under")).all()


def test_moneyline_scores_agree_with_the_winner(small: dict[str, EventBatch]) -> None:
    ml = small["moneyline"]
    events = ml.events.set_index("event_key").loc[ml.results["event_key"]]
    home_won = events["home_score"].astype(int) > events["away_score"].astype(int)
    assert (ml.results["winner"].to_numpy() == np.where(home_won, "home", "away")).all()


def test_football_goals_per_game_are_plausible(football: EventBatch) -> None:
    goals = football.events["home_score"].astype(int) + football.events["away_score"].astype(int)
    assert 2.3 <= goals.mean() <= 3.2


@pytest.mark.parametrize("sport", ["football", "moneyline"])
def test_a_team_never_plays_twice_on_one_day(small: dict[str, EventBatch], sport: str) -> None:
    events = small[sport].events
    day = events["starts_at"].dt.date
    appearances = pd.concat(
        [pd.DataFrame({"day": day, "team": events[side]}) for side in ("home", "away")]
    )
    assert not appearances.duplicated().any()


def test_a_runner_never_races_twice_on_one_day(small: dict[str, EventBatch]) -> None:
    racing = small["racing"]
    runners = racing.selections.merge(racing.events[["event_key", "starts_at"]], on="event_key")
    assert not runners[["participant"]].assign(day=runners["starts_at"].dt.date).duplicated().any()


def test_racing_fields_hold_6_to_14_runners(small: dict[str, EventBatch]) -> None:
    racing = small["racing"]
    field = racing.selections.groupby("event_key").size()
    assert field.between(6, 14).all()
    assert len(racing) == 3 * 200
    positions = racing.selections.groupby("event_key")["position"].agg(["min", "max", "size"])
    assert (positions["min"] == 0).all() and (positions["max"] == positions["size"] - 1).all()


def test_strengths_drift_across_seasons(football: EventBatch) -> None:
    # A double round robin meets the same opponents every season, so without drift a team's
    # average true chance of winning at home would be the same each season.
    fb = football
    sel = fb.selections[(fb.selections["market_key"] == "1x2") & (fb.selections["name"] == "home")]
    sel = sel.merge(fb.events[["event_key", "season"]], on="event_key")
    per_season = sel.groupby(["participant", "season"])["true_probability"].mean().unstack()
    assert (per_season.max(axis=1) - per_season.min(axis=1) > 0.05).all()


def test_events_per_season_spreads_games_over_several_leagues() -> None:
    batch = simulate("football", seasons=2, seed=2, teams=10, events_per_season=250)
    batch.validate()
    assert batch.events.groupby("season").size().tolist() == [250, 250]
    assert set(batch.events["competition"]) == {"SIM-FB1", "SIM-FB2", "SIM-FB3"}


@pytest.mark.parametrize("sport", SPORTS)
def test_prices_and_capture_times(small: dict[str, EventBatch], sport: str) -> None:
    batch = small[sport]
    odds = batch.odds
    assert (odds["price"] >= 1.01).all()
    np.testing.assert_allclose(odds["price"] * 100, np.round(odds["price"] * 100), atol=1e-6)
    assert set(odds["bookmaker"]) == {"book_1", "book_2", "book_3", "book_4"}
    assert set(odds["kind"]) == {"open", "close"}
    per_selection = odds.groupby(SELECTION).size()
    assert len(per_selection) == len(batch.selections) and (per_selection == 8).all()
    lead = odds.merge(batch.events[["event_key", "starts_at"]], on="event_key")
    lead = (lead["starts_at"] - lead["captured_at"]).dt.total_seconds() / 86400
    is_open = (odds["kind"] == "open").to_numpy()
    assert (lead[~is_open] == 0).all()
    assert lead[is_open].between(2, 5).all()


@pytest.mark.parametrize("sport", SPORTS)
def test_each_bookmaker_keeps_its_own_margin_within_2_to_8_percent(
    small: dict[str, EventBatch], sport: str
) -> None:
    odds = priced(small[sport])
    overround = odds.groupby([*MARKET, "bookmaker", "kind"])["book_sum"].first() - 1.0
    per_book = overround.groupby("bookmaker").agg(["mean", "min", "max"])
    assert per_book["mean"].between(0.02, 0.08).all()
    # Rounding prices to cents moves a market's overround only a little around the book's margin.
    assert (per_book["max"] - per_book["min"] < 0.015).all()
    assert per_book["min"].min() > 0.01 and per_book["max"].max() < 0.09
    assert per_book["mean"].nunique() == len(per_book)


@pytest.mark.parametrize("sport", SPORTS)
def test_longshots_carry_more_of_the_margin_than_favourites(
    small: dict[str, EventBatch], sport: str
) -> None:
    odds = priced(small[sport])
    ratio = odds["implied"] / odds["true_probability"]
    p = odds["true_probability"]
    longshots, favourites = ratio[p < 0.2].mean(), ratio[p > 0.4].mean()
    assert longshots > favourites + 0.01


def test_closing_odds_are_nearer_the_truth_than_opening_odds(football: EventBatch) -> None:
    odds = priced(football)
    winners = odds[odds["won"] == 1.0]
    market_loss = (-np.log(winners["fair"])).groupby(winners["kind"]).mean()
    truth = selections_with_outcome(football)
    truth_loss = -np.log(truth.loc[truth["won"] == 1.0, "true_probability"]).mean()
    assert market_loss["open"] > market_loss["close"] > truth_loss


def test_outcomes_are_calibrated_to_the_true_probabilities(football: EventBatch) -> None:
    sel = selections_with_outcome(football)
    bins = pd.cut(sel["true_probability"], [0.0, 0.15, 0.25, 0.35, 0.45, 0.55, 0.7, 1.0])
    table = sel.groupby(bins, observed=True).agg(
        p=("true_probability", "mean"), freq=("won", "mean"), n=("won", "size")
    )
    table = table[table["n"] >= 200]
    assert len(table) >= 5
    se = np.sqrt(table["p"] * (1 - table["p"]) / table["n"])
    assert ((table["freq"] - table["p"]).abs() < 4 * se + 0.005).all()
