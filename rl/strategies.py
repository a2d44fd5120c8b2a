"""Staking strategies the agent is judged against, and the hook that puts the agent among them.

A strategy reads the decision table (:mod:`rl.decisions`) of a period and makes one decision per
market: the selection with the highest edge ``p * odds - 1`` by its own probabilities
(:func:`betting.bankroll.best_edge_rows`) and a stake, as a fraction of the current bankroll
(0: no bet). Every strategy decides on the same markets, so their backtests compare like with
like; :func:`rl.backtest.run_backtest` settles the decisions.

The baselines (:data:`STRATEGIES`, built from one :class:`StrategyParams`):

* ``no-bet``: never stakes (a bankroll that stays at 1);
* ``flat``: ``flat_fraction`` of the current bankroll on every value bet (edge >= ``min_edge``);
* ``kelly``: full Kelly on the model's probabilities (``p_model``) on value bets, each stake
  capped at ``max_fraction`` of the bankroll;
* ``half-kelly``: half of that Kelly stake, under the same cap;
* ``oracle-kelly``: ``kelly`` with the simulator's true probabilities instead of the model's,
  under the same ``min_edge`` and cap: the same staking rule with perfect probabilities, so it
  is the ceiling of ``kelly`` (and of any agent using these prices) and the gap between the two
  is what better probabilities are worth. Real data has no truth and refuses it.

The agent joins them as a :class:`PolicyStake` around any object with a
``decide(decisions) -> fractions`` method (:class:`Policy`), such as the one
``rl.policy.load_policy`` returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from betting.bankroll import best_edge_rows
from betting.errors import InvalidInput
from betting.evaluation import value_bets
from betting.odds import fractional_kelly

#: The column of the decision table whose probabilities the model-based strategies use.
MODEL_PROBABILITY = "p_model"
#: The simulator's truth (NaN on real data).
TRUE_PROBABILITY = "true_probability"
#: The strategy name the DQN agent's decisions go by.
DQN = "dqn"


class StakeSizes(BaseModel):
    """How much the baselines stake (``stakes:`` in ``configs/rl/backtest.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    flat_fraction: float = Field(0.01, gt=0.0, le=1.0)
    """Share of the current bankroll that ``flat`` stakes on each bet."""
    max_fraction: float = Field(0.05, gt=0.0, le=1.0)
    """Cap on any Kelly stake (``kelly``, ``half-kelly``, ``oracle-kelly``), a share of the
    current bankroll: full Kelly on a 5% edge at long odds would otherwise stake far more than a
    model's errors justify."""


class StrategyParams(StakeSizes):
    """Everything the baselines are built from: the stake sizes and the edge of a bet."""

    min_edge: float = Field(0.02, ge=0.0)
    """Lowest edge (EV per unit stake, by the strategy's own probabilities) of a bet; configs
    set it as ``data.min_edge``, the edge of a value bet everywhere in betml."""


class Strategy(BaseModel, ABC):
    """Decides one stake per market of a decision table; subclasses say how much."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """How tables, JSON and plots call it."""
    probability_column: str = MODEL_PROBABILITY
    """The decision-table column whose probabilities choose the selection (and size the stake)."""

    def check(self, frame: pd.DataFrame) -> None:
        """Refuse a table this strategy cannot decide on, naming what is missing."""
        column = self.probability_column
        missing = int(frame[column].isna().sum()) if column in frame.columns else len(frame)
        if missing:
            raise InvalidInput(
                f"strategy {self.name!r} needs {column!r} on every row; {missing} of "
                f"{len(frame)} rows have none"
            )

    def decide(
        self, decisions: pd.DataFrame, market_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The row bet in each market (markets in order of first appearance) and its stake.

        Args:
            decisions: the decision table of the period, rows 0..n-1 in time order.
            market_ids: the market of each row (``betting.evaluation.market_ids_of``).

        Returns:
            ``(rows, fractions)``: one row and one fraction of the current bankroll per market.
        """
        self.check(decisions)
        p = decisions[self.probability_column].to_numpy(dtype=float)
        odds = decisions["odds"].to_numpy(dtype=float)
        rows = best_edge_rows(p, odds, market_ids)
        return rows, self.stakes(decisions, p[rows], odds[rows])

    @abstractmethod
    def stakes(self, decisions: pd.DataFrame, p: np.ndarray, odds: np.ndarray) -> np.ndarray:
        """The fraction staked on each market's chosen selection (probability ``p``, ``odds``)."""


class NoBet(Strategy):
    """Never bets: the bankroll stays where it started."""

    def stakes(self, decisions: pd.DataFrame, p: np.ndarray, odds: np.ndarray) -> np.ndarray:
        return np.zeros(len(p))


class FlatStake(Strategy):
    """The same share of the current bankroll on every value bet."""

    fraction: float = Field(0.01, gt=0.0, le=1.0)
    """Share of the current bankroll per bet."""
    min_edge: float = Field(0.02, ge=0.0)
    """Lowest edge of a bet."""

    def stakes(self, decisions: pd.DataFrame, p: np.ndarray, odds: np.ndarray) -> np.ndarray:
        return np.where(value_bets(p, odds, min_edge=self.min_edge), self.fraction, 0.0)


class KellyStake(Strategy):
    """A share of the Kelly stake on every value bet, capped."""

    multiplier: float = Field(1.0, gt=0.0, le=1.0)
    """Share of full Kelly (0.5: half Kelly)."""
    max_fraction: float = Field(0.05, gt=0.0, le=1.0)
    """Cap on a stake, a share of the current bankroll."""
    min_edge: float = Field(0.02, ge=0.0)
    """Lowest edge of a bet."""

    def stakes(self, decisions: pd.DataFrame, p: np.ndarray, odds: np.ndarray) -> np.ndarray:
        kelly = np.minimum(fractional_kelly(p, odds, self.multiplier), self.max_fraction)
        return np.where(value_bets(p, odds, min_edge=self.min_edge), kelly, 0.0)


class OracleKelly(KellyStake):
    """Kelly on the simulator's true probabilities: the ceiling (simulated data only)."""

    probability_column: str = TRUE_PROBABILITY

    def check(self, frame: pd.DataFrame) -> None:
        column = self.probability_column
        if column not in frame.columns or frame[column].isna().any():
            raise InvalidInput(
                f"strategy {self.name!r} needs the simulator's true probabilities "
                f"({column!r}), which this data lacks: real data has no truth, so leave "
                f"{self.name!r} out on it"
            )


@runtime_checkable
class Policy(Protocol):
    """What the DQN hook needs of a trained agent (``rl.policy.load_policy`` returns one)."""

    def decide(self, decisions: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        """One stake fraction (of the current bankroll, in [0, 1]) per market of
        ``decisions``: a frame keyed by ``event_key`` and ``market_key`` with a ``fraction``
        column (as ``rl.policy.ExportedPolicy.decide`` returns), or an array with markets in order
        of first appearance; each is staked on the market's
        best-edge selection by ``p_model``. ``decisions`` holds the period's rows in time order
        with their outcomes: a policy that tracks its bankroll must settle a market only after
        deciding on it."""
        ...


class PolicyStake(Strategy):
    """A trained agent's stakes on each market's best-edge selection by the model's
    probabilities (the selection the agent's environment offers it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    policy: Policy = Field(exclude=True)
    """The agent: any object with ``decide(decisions) -> fractions``."""
    source: str = ""
    """Where the policy came from (its folder), for the backtest's record."""

    def stakes(self, decisions: pd.DataFrame, p: np.ndarray, odds: np.ndarray) -> np.ndarray:
        decided = self.policy.decide(decisions)
        if isinstance(decided, pd.DataFrame):
            fractions = _keyed_fractions(decisions, decided, self.name)
        else:
            fractions = np.asarray(decided, dtype=float)
        if fractions.shape != p.shape:
            raise InvalidInput(
                f"policy {self.name!r} returned {fractions.shape} stakes for {len(p)} markets"
            )
        return fractions


def _keyed_fractions(decisions: pd.DataFrame, decided: pd.DataFrame, name: str) -> np.ndarray:
    """A policy's keyed stakes in the order of the markets' first appearance in ``decisions``."""
    keys = ["event_key", "market_key"]
    missing = [c for c in (*keys, "fraction") if c not in decided.columns]
    if missing:
        raise InvalidInput(f"policy {name!r} answered without column(s) {missing}")
    markets = decisions[keys].drop_duplicates()
    merged = markets.merge(decided[[*keys, "fraction"]], on=keys, how="left", validate="1:1")
    if merged["fraction"].isna().any():
        first = merged[merged["fraction"].isna()].iloc[0]
        raise InvalidInput(
            f"policy {name!r} gave no stake for market {first['event_key']}/{first['market_key']}"
        )
    return merged["fraction"].to_numpy(dtype=float)


#: The baselines by name, each built from the shared :class:`StrategyParams`. A new baseline is
#: a new entry here.
STRATEGIES: dict[str, Callable[[StrategyParams], Strategy]] = {
    "no-bet": lambda s: NoBet(name="no-bet"),
    "flat": lambda s: FlatStake(name="flat", fraction=s.flat_fraction, min_edge=s.min_edge),
    "kelly": lambda s: KellyStake(
        name="kelly", multiplier=1.0, max_fraction=s.max_fraction, min_edge=s.min_edge
    ),
    "half-kelly": lambda s: KellyStake(
        name="half-kelly", multiplier=0.5, max_fraction=s.max_fraction, min_edge=s.min_edge
    ),
    "oracle-kelly": lambda s: OracleKelly(
        name="oracle-kelly", multiplier=1.0, max_fraction=s.max_fraction, min_edge=s.min_edge
    ),
}


def build_strategies(names: Sequence[str], params: StrategyParams) -> list[Strategy]:
    """The baselines called ``names``, in that order.

    Raises:
        InvalidInput: an unknown name (``dqn`` is not a baseline: wrap a policy in
            :class:`PolicyStake`).
    """
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise InvalidInput(f"unknown strategy {unknown[0]!r}; baselines: {sorted(STRATEGIES)}")
    return [STRATEGIES[n](params) for n in names]


def describe(strategy: Strategy) -> dict[str, Any]:
    """A strategy's kind and settings, for the backtest's record."""
    return {"kind": type(strategy).__name__, **strategy.model_dump()}
