"""The betting environment: one stake decision per market, in time order, on a decision table.

At each step the agent sees one market through the selection with the highest edge by the
outcome model (``p_model * odds - 1``; the agent sizes stakes, it does not pick selections) and
its own bankroll, and answers with a stake: action 0 is no bet, action ``i`` stakes
``stake_ladder[i - 1]`` of the current bankroll on that selection. The bet is settled with the
market's real result before the next step, and the reward is the log growth of the bankroll,
``log(bankroll_after / bankroll_before)`` (0 without a bet). An episode is one season
(``episode: season``) or a window of consecutive markets (``episode: window``), picked at
random on reset from the seasons the environment was given; it ends early on ruin, when the
bankroll falls below ``ruin_fraction`` of its start.

Nothing of an event's result reaches the observation before the step that bets on it: the
observation holds the decision table's pre-event columns and the bankroll state of settled
bets only. Markets that start together are decided one after another in table order, each
settled before the next (a simplification: a live bettor would stake them from one bankroll).

The observation is a flat float32 vector; :func:`observation_names` names its entries, and
:func:`market_observation` computes it without an environment (backtests and serving use it).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from betting.bankroll import best_edge_rows, settle_bet
from betting.errors import InvalidInput
from betting.evaluation import market_ids_of
from rl.decisions import DECISION_COLUMNS

#: Observation entries of the chosen selection and its market, before the features.
MARKET_OBSERVATION = [
    "p_model", "p_market", "log_odds", "edge", "kelly", "model_minus_market", "selections",
]  # fmt: skip
#: Observation entries of the bankroll state, after the features.
BANKROLL_OBSERVATION = ["log_bankroll", "drawdown", "recent_return", "progress"]
#: Observed values are clipped to +/- this (a long winning run must not blow up the inputs).
OBSERVATION_CLIP = 10.0


class EnvConfig(BaseModel):
    """How the environment turns a decision table into episodes (``configs/rl/*.yaml: env``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stake_ladder: list[float] = Field(default_factory=lambda: [0.0025, 0.005, 0.01, 0.02, 0.05])
    """Stake fractions of the current bankroll, actions 1..n (action 0 is no bet)."""
    episode: Literal["season", "window"] = "season"
    """An episode is a season, or ``window_markets`` consecutive markets."""
    window_markets: int = Field(200, ge=2)
    """Markets per episode with ``episode: window``."""
    ruin_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """The episode ends when the bankroll falls below this share of its start."""
    features: list[str] = Field(
        default_factory=lambda: [
            "elo_diff",
            "form5_diff",
            "is_home",
            "is_draw",
            "is_away",
            "close_implied_std",
            "implied_move",
        ]
    )
    """Feature columns of the chosen selection in the observation (NaN becomes 0)."""
    recent_bets: int = Field(20, ge=1)
    """Bets in the ``recent_return`` entry (mean return on bankroll of the last bets)."""

    @field_validator("stake_ladder")
    @classmethod
    def _ladder(cls, ladder: list[float]) -> list[float]:
        if not ladder or any(not 0.0 < f <= 1.0 for f in ladder):
            raise ValueError(f"stake_ladder needs fractions in (0, 1], got {ladder}")
        if sorted(set(ladder)) != ladder:
            raise ValueError(f"stake_ladder must increase strictly, got {ladder}")
        return ladder

    def stake_of(self, action: int) -> float:
        """The stake fraction of an action (0: no bet)."""
        return 0.0 if action == 0 else self.stake_ladder[action - 1]


def observation_names(config: EnvConfig) -> list[str]:
    """The name of every entry of the observation vector, in order."""
    return [*MARKET_OBSERVATION, *(f"feature:{f}" for f in config.features),
            *BANKROLL_OBSERVATION]  # fmt: skip


class Markets:
    """The decision table grouped into markets: per market, its chosen row and its size."""

    def __init__(self, decisions: pd.DataFrame, config: EnvConfig) -> None:
        missing = [c for c in (*DECISION_COLUMNS, *config.features) if c not in decisions]
        if missing:
            raise InvalidInput(f"decision table lacks column(s) {missing}")
        frame = decisions.sort_values(["starts_at", "event_key", "market_key"], kind="stable")
        frame = frame.reset_index(drop=True)
        ids = market_ids_of(frame)
        chosen = best_edge_rows(frame["p_model"], frame["odds"], ids)
        self.rows = frame.iloc[chosen].reset_index(drop=True)
        self.sizes = np.bincount(ids)[ids[chosen]]
        self.season = self.rows["season"].astype(str).to_numpy()
        self.won = self.rows["won"].to_numpy(dtype=float)
        self.odds = self.rows["odds"].to_numpy(dtype=float)
        self.static = static_observation(self.rows, self.sizes, config)

    def __len__(self) -> int:
        return len(self.rows)


def static_observation(rows: pd.DataFrame, sizes: np.ndarray, config: EnvConfig) -> np.ndarray:
    """``[markets, len(MARKET_OBSERVATION) + len(features)]``: the part of each observation
    that does not depend on the bankroll."""
    p = rows["p_model"].to_numpy(dtype=float)
    odds = rows["odds"].to_numpy(dtype=float)
    p_market = rows["p_market"].to_numpy(dtype=float)
    edge = p * odds - 1.0
    kelly = np.clip(edge / (odds - 1.0), 0.0, 1.0)
    market = np.column_stack(
        [p, p_market, np.log(odds), edge, kelly, p - p_market, np.asarray(sizes) / 10.0]
    )
    features = rows[config.features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    static = np.concatenate([market, np.nan_to_num(features, nan=0.0)], axis=1)
    return np.clip(static, -OBSERVATION_CLIP, OBSERVATION_CLIP).astype(np.float32)


def market_observation(
    static: np.ndarray, *, log_bankroll: float, drawdown: float, recent_return: float,
    progress: float,
) -> np.ndarray:  # fmt: skip
    """One observation: a market's static part followed by the bankroll state."""
    state = np.array([log_bankroll, drawdown, recent_return * 100.0, progress], dtype=np.float32)
    return np.clip(np.concatenate([static, state]), -OBSERVATION_CLIP, OBSERVATION_CLIP).astype(
        np.float32
    )


class BettingEnv(gym.Env):
    """Stake sizing over a decision table (see the module docstring).

    ``env_config`` (RLlib passes it as one dict): ``decisions`` (a DataFrame, see
    :mod:`rl.decisions`) or ``decisions_path`` (Parquet), ``env`` (an :class:`EnvConfig` or its
    dict) and ``seasons`` (the seasons to draw episodes from; default all of the table's).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env_config: dict[str, Any] | None = None) -> None:
        env_config = dict(env_config or {})
        self.config = EnvConfig.model_validate(env_config.get("env") or {})
        decisions = env_config.get("decisions")
        if decisions is None:
            if "decisions_path" not in env_config:
                raise InvalidInput("env_config needs `decisions` or `decisions_path`")
            decisions = pd.read_parquet(env_config["decisions_path"])
        seasons = env_config.get("seasons")
        if seasons is not None:
            decisions = decisions[decisions["season"].astype(str).isin([str(s) for s in seasons])]
        self.markets = Markets(decisions, self.config)
        if len(self.markets) < 2:
            raise InvalidInput(f"{len(self.markets)} market(s) are too few for an episode")
        self.seasons = sorted(set(self.markets.season))
        n_obs = len(observation_names(self.config))
        self.observation_space = gym.spaces.Box(
            -OBSERVATION_CLIP, OBSERVATION_CLIP, shape=(n_obs,), dtype=np.float32
        )
        self.action_space = gym.spaces.Discrete(len(self.config.stake_ladder) + 1)
        self._episode = np.arange(0)
        self._step = 0
        self._done = True  # reset() starts an episode
        self.bankroll = self.peak = 1.0
        self._recent: deque[float] = deque(maxlen=self.config.recent_bets)

    # --- episodes ---------------------------------------------------------------------------

    def _pick_episode(self, options: dict[str, Any] | None) -> np.ndarray:
        options = options or {}
        if "season" in options:
            season = str(options["season"])
            if season not in self.seasons:
                raise InvalidInput(f"season {season!r} is not one of {self.seasons}")
        else:
            season = self.seasons[int(self.np_random.integers(len(self.seasons)))]
        markets = np.flatnonzero(self.markets.season == season)
        if self.config.episode == "window" and len(markets) > self.config.window_markets:
            start = int(self.np_random.integers(len(markets) - self.config.window_markets + 1))
            markets = markets[start : start + self.config.window_markets]
        return markets

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: a random season (``options={"season": ...}`` picks one)."""
        super().reset(seed=seed)
        self._episode = self._pick_episode(options)
        self._step = 0
        self._done = False
        self.bankroll = self.peak = 1.0
        self._recent.clear()
        return self._observation(), {"season": self.markets.season[self._episode[0]]}

    def _observation(self) -> np.ndarray:
        market = self._episode[min(self._step, len(self._episode) - 1)]
        return market_observation(
            self.markets.static[market],
            log_bankroll=math.log(self.bankroll),
            drawdown=1.0 - self.bankroll / self.peak,
            recent_return=float(np.mean(self._recent)) if self._recent else 0.0,
            progress=self._step / len(self._episode),
        )

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Stake the action's fraction on the current market, settle it, move on."""
        if not self.action_space.contains(action):
            raise InvalidInput(f"action {action!r} is not in {self.action_space}")
        if self._done:
            raise InvalidInput("the episode is over: call reset()")
        market = self._episode[self._step]
        fraction = self.config.stake_of(int(action))
        before = self.bankroll
        won = bool(self.markets.won[market])
        self.bankroll = settle_bet(before, fraction, float(self.markets.odds[market]), won)
        self.peak = max(self.peak, self.bankroll)
        if fraction > 0.0:
            self._recent.append(self.bankroll / before - 1.0)
        reward = math.log(self.bankroll / before) if self.bankroll > 0.0 else -math.inf
        self._step += 1
        ruined = self.bankroll < self.config.ruin_fraction
        done = ruined or self._step >= len(self._episode)
        self._done = done
        info = {"bankroll": self.bankroll, "stake": fraction, "won": won, "ruined": ruined,
                "market": int(market)}  # fmt: skip
        return self._observation(), float(max(reward, -50.0)), done, False, info


def greedy_rollout(env: BettingEnv, act: Any, *, season: str) -> pd.DataFrame:
    """Play one whole season with ``act(observation) -> action``; one row per market: the
    stake, the bankroll after it, and whether the bet won. Used by backtests of a policy."""
    obs, _ = env.reset(options={"season": season})
    rows = []
    done = False
    while not done:
        action = int(act(obs))
        obs, _, done, _, info = env.step(action)
        rows.append({"market": info["market"], "action": action, "stake": info["stake"],
                     "bankroll": info["bankroll"], "won": info["won"]})  # fmt: skip
    return pd.DataFrame(rows)


def stake_ladder_actions(config: EnvConfig, fractions: Sequence[float]) -> np.ndarray:
    """The ladder action nearest below each stake fraction (0 for no bet): how a continuous
    staking rule is played in the environment."""
    ladder = np.asarray([0.0, *config.stake_ladder])
    return np.searchsorted(ladder, np.asarray(fractions, dtype=float), side="right") - 1
