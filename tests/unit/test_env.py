"""The betting environment without Ray: spaces, gymnasium's checks, reward arithmetic on a
hand-made decision table, no look-ahead, determinism, ruin and refusals."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from pydantic import ValidationError

from betting.errors import InvalidInput
from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from rl.decisions import DECISION_COLUMNS, ModelSource, decision_table
from rl.env import (
    BANKROLL_OBSERVATION,
    MARKET_OBSERVATION,
    BettingEnv,
    EnvConfig,
    greedy_rollout,
    observation_names,
    stake_ladder_actions,
)

#: Actions of the default ladder [0.25%, 0.5%, 1%, 2%, 5%].
NO_BET, STAKE_1PCT, STAKE_2PCT, STAKE_5PCT = 0, 3, 4, 5


def market_rows(
    event: str, minute: int, p_model: list[float], odds: list[float], winner: int,
    season: str = "2020-21",
) -> list[dict[str, object]]:  # fmt: skip
    """One 1x2 market (home, draw, away) with every column the environment reads."""
    implied = [1.0 / o for o in odds]
    return [
        {
            "event_key": event,
            "market_key": "1x2",
            "selection": name,
            "starts_at": pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(minutes=minute),
            "season": season,
            "p_model": p,
            "p_market": q / sum(implied),
            "odds": o,
            "closing_odds": o,
            "won": int(i == winner),
            "true_probability": np.nan,
            "elo_diff": 10.0 * (1 - i),
            "form5_diff": 0.5,
            "is_home": int(i == 0),
            "is_draw": int(i == 1),
            "is_away": int(i == 2),
            "close_implied_std": 0.01,
            "implied_move": -0.02,
        }
        for i, (name, p, o, q) in enumerate(
            zip(("home", "draw", "away"), p_model, odds, implied, strict=True)
        )
    ]


@pytest.fixture
def two_markets() -> pd.DataFrame:
    """Market A: the draw has the best model edge (0.35 * 3.0 - 1 = 0.05) and wins.
    Market B: the away side has the best edge (0.3 * 4.0 - 1 = 0.2) and loses."""
    rows = market_rows("A", 0, [0.45, 0.35, 0.20], [2.0, 3.0, 4.0], winner=1)
    rows += market_rows("B", 60, [0.40, 0.30, 0.30], [2.2, 3.2, 4.0], winner=0)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def real_table() -> pd.DataFrame:
    """A decision table of a 12-team simulated league: 2 seasons with model probabilities."""
    table = build_features(selection_frame(simulate("football", 3, seed=1, teams=12)))
    table = table[table["market_key"] == "1x2"].reset_index(drop=True)
    return decision_table(table, ModelSource(), sport="football", market="1x2")


def test_the_hand_made_table_has_every_column_the_environment_reads(
    two_markets: pd.DataFrame,
) -> None:
    assert set(DECISION_COLUMNS) <= set(two_markets.columns)
    assert set(EnvConfig().features) <= set(two_markets.columns)


def test_spaces_follow_the_config(two_markets: pd.DataFrame) -> None:
    config = EnvConfig(stake_ladder=[0.01, 0.03], features=["elo_diff"])
    env = BettingEnv({"decisions": two_markets, "env": config})
    names = observation_names(config)
    assert names == [*MARKET_OBSERVATION, "feature:elo_diff", *BANKROLL_OBSERVATION]
    assert env.observation_space.shape == (len(names),)
    assert env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info == {"season": "2020-21"}


def test_gymnasium_check_env_passes(real_table: pd.DataFrame) -> None:
    check_env(BettingEnv({"decisions": real_table}), skip_render_check=True)


def test_rewards_are_the_log_growth_of_hand_settled_bets(two_markets: pd.DataFrame) -> None:
    env = BettingEnv({"decisions": two_markets})
    obs, _ = env.reset(seed=0)
    first = dict(zip(observation_names(env.config), obs.tolist(), strict=True))
    assert first["p_model"] == pytest.approx(0.35)
    assert first["log_odds"] == pytest.approx(math.log(3.0))
    assert first["edge"] == pytest.approx(0.05)
    assert first["kelly"] == pytest.approx(0.05 / 2.0)
    assert first["selections"] == pytest.approx(0.3)
    assert first["feature:is_draw"] == 1.0
    assert [first[k] for k in BANKROLL_OBSERVATION] == [0.0, 0.0, 0.0, 0.0]

    # 2% of 1.0 on the draw at 3.0, which wins: 1 + 0.02 * 2 = 1.04.
    obs, reward, terminated, truncated, info = env.step(STAKE_2PCT)
    assert reward == pytest.approx(math.log(1.04))
    assert info["bankroll"] == pytest.approx(1.04) and info["stake"] == 0.02 and info["won"]
    assert not terminated and not truncated
    second = dict(zip(observation_names(env.config), obs.tolist(), strict=True))
    assert second["p_model"] == pytest.approx(0.30) and second["feature:is_away"] == 1.0
    assert second["log_bankroll"] == pytest.approx(math.log(1.04), rel=1e-6)
    assert second["recent_return"] == pytest.approx(4.0, rel=1e-5)  # +4%, in percent
    assert second["progress"] == pytest.approx(0.5)

    # 5% of 1.04 on the away side at 4.0, which loses: 1.04 * 0.95.
    _, reward, terminated, _, info = env.step(STAKE_5PCT)
    assert reward == pytest.approx(math.log(0.95))
    assert info["bankroll"] == pytest.approx(1.04 * 0.95) and not info["won"]
    assert terminated and not info["ruined"], "the season is over, not the bankroll"


def test_no_bet_leaves_the_bankroll_and_earns_nothing(two_markets: pd.DataFrame) -> None:
    env = BettingEnv({"decisions": two_markets})
    env.reset(seed=0)
    _, reward, _, _, info = env.step(NO_BET)
    assert reward == 0.0 and info["bankroll"] == 1.0 and info["stake"] == 0.0


def _season_markets(env: BettingEnv, season: str) -> pd.DataFrame:
    return env.markets.rows[env.markets.season == season]


def _observations(table: pd.DataFrame, season: str, actions: list[int]) -> np.ndarray:
    env = BettingEnv({"decisions": table})
    obs, _ = env.reset(options={"season": season})
    seen = [obs]
    for action in actions:
        obs, *_ = env.step(action)
        seen.append(obs)
    return np.array(seen)


def test_no_future_result_reaches_an_observation(real_table: pd.DataFrame) -> None:
    season = sorted(real_table["season"].unique())[-1]
    env = BettingEnv({"decisions": real_table})
    markets = _season_markets(env, season)
    k = 40  # the market bet on at step k (observation k is what the agent sees for it)
    future = markets.iloc[k:][["event_key", "market_key"]]
    changed = real_table.copy()
    is_future = changed.set_index(["event_key", "market_key"]).index.isin(
        pd.MultiIndex.from_frame(future)
    )
    # Move every future market's win to the next selection: other results, same prices.
    rotated = (
        changed[is_future]
        .groupby(["event_key", "market_key"])["won"]
        .transform(lambda won: np.roll(won.to_numpy(), 1))
    )
    changed.loc[is_future, "won"] = rotated
    assert (changed["won"] != real_table["won"]).any()

    actions = [STAKE_2PCT, NO_BET, STAKE_5PCT, STAKE_1PCT] * 15
    original = _observations(real_table, season, actions)
    other = _observations(changed, season, actions)
    np.testing.assert_array_equal(original[: k + 1], other[: k + 1])
    assert not np.array_equal(original[k + 1 :], other[k + 1 :]), "results do count afterwards"


def _trajectory(env: BettingEnv, seed: int, actions: list[int]) -> tuple[str, list[float]]:
    obs, info = env.reset(seed=seed)
    values = [*obs.tolist()]
    for action in actions:
        obs, reward, done, _, _ = env.step(action)
        values += [*obs.tolist(), reward]
        if done:
            break
    return info["season"], values


def test_same_seed_same_actions_same_trajectory(real_table: pd.DataFrame) -> None:
    actions = [STAKE_1PCT, STAKE_5PCT, NO_BET] * 30
    config = {"episode": "window", "window_markets": 50}
    first = _trajectory(BettingEnv({"decisions": real_table, "env": config}), 7, actions)
    again = _trajectory(BettingEnv({"decisions": real_table, "env": config}), 7, actions)
    assert first == again
    starts = {
        tuple(_trajectory(BettingEnv({"decisions": real_table, "env": config}), s, [])[1])
        for s in range(10)
    }
    assert len(starts) > 1, "the seed picks the window"


def test_the_seed_picks_the_season(real_table: pd.DataFrame) -> None:
    env = BettingEnv({"decisions": real_table})
    seasons = {env.reset(seed=seed)[1]["season"] for seed in range(20)}
    assert seasons == set(env.seasons) and len(seasons) == 2


def test_ruin_ends_the_episode(two_markets: pd.DataFrame) -> None:
    rows = []
    for n in range(6):  # six markets whose chosen selection (the away side) loses
        rows += market_rows(f"E{n}", 10 * n, [0.40, 0.30, 0.30], [2.2, 3.2, 4.0], winner=0)
    config = EnvConfig(stake_ladder=[0.1, 0.5], ruin_fraction=0.6)
    env = BettingEnv({"decisions": pd.DataFrame(rows), "env": config})
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(1)  # 10%: 0.9, above 0.6
    assert not terminated and info["bankroll"] == pytest.approx(0.9)
    _, reward, terminated, truncated, info = env.step(2)  # 50%: 0.45, below 0.6
    assert terminated and not truncated and info["ruined"]
    assert reward == pytest.approx(math.log(0.5))
    with pytest.raises(InvalidInput, match="reset"):
        env.step(1)  # a ruined bankroll bets no more
    env.reset(seed=0)  # a new episode starts from a whole bankroll
    assert env.bankroll == 1.0


def test_bad_actions_are_refused(two_markets: pd.DataFrame) -> None:
    env = BettingEnv({"decisions": two_markets})
    env.reset(seed=0)
    for action in (6, -1, 2.5, "1"):
        with pytest.raises(InvalidInput, match="not in Discrete"):
            env.step(action)  # type: ignore[arg-type]
    env.step(NO_BET)
    env.step(NO_BET)
    with pytest.raises(InvalidInput, match="reset"):
        env.step(NO_BET)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"stake_ladder": []}, "fractions"),
        ({"stake_ladder": [0.01, 1.5]}, "fractions"),
        ({"stake_ladder": [0.0, 0.01]}, "fractions"),
        ({"stake_ladder": [0.02, 0.01]}, "increase"),
        ({"stake_ladder": [0.01, 0.01]}, "increase"),
        ({"ruin_fraction": 1.0}, "less than 1"),
        ({"ruin_fraction": 0.0}, "greater than 0"),
        ({"window_markets": 1}, "greater than or equal to 2"),
        ({"episode": "month"}, "season"),
        ({"stake": 0.01}, "Extra inputs"),
    ],
)
def test_bad_configs_are_refused(config: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        EnvConfig.model_validate(config)


def test_bad_tables_and_seasons_are_refused(two_markets: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="decisions"):
        BettingEnv({"env": {}})
    with pytest.raises(InvalidInput, match="odds"):
        BettingEnv({"decisions": two_markets.drop(columns="odds")})
    with pytest.raises(InvalidInput, match="too few"):
        BettingEnv({"decisions": two_markets[two_markets["event_key"] == "A"]})
    with pytest.raises(InvalidInput, match="too few"):
        BettingEnv({"decisions": two_markets, "seasons": ["1999-00"]})
    env = BettingEnv({"decisions": two_markets})
    with pytest.raises(InvalidInput, match="not one of"):
        env.reset(options={"season": "1999-00"})


def test_greedy_rollout_plays_a_whole_season(real_table: pd.DataFrame) -> None:
    env = BettingEnv({"decisions": real_table})
    season = env.seasons[0]
    played = greedy_rollout(env, lambda obs: STAKE_1PCT, season=season)
    assert len(played) == (env.markets.season == season).sum()
    assert (played["stake"] == 0.01).all()
    assert list(played["market"]) == list(np.flatnonzero(env.markets.season == season))
    assert list(stake_ladder_actions(env.config, [0.0, 0.004, 0.01, 0.3])) == [0, 1, 3, 5]
