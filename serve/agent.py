"""The strategy-agent deployment: registered DQN staking policies, served like outcome models.

:class:`StrategyAgent` serves ``betml-dqn-<sport>-<market>`` policies (:mod:`rl.policy`, plain
torch, no RLlib) by alias, ``champion`` by default, with the slots of :mod:`serve.models`: the
multiplexed model id is ``name@alias``, a policy is loaded on first use (UNAVAILABLE meanwhile;
NOT_FOUND when none is registered) and swapped without dropping requests when its alias moves.
``@serve.batch`` gathers the markets of concurrent requests into one forward pass.

Given markets' decision rows (:func:`serve.agent_rows.decision_rows`) and a bankroll state, the
agent answers one stake per market, on the selection with the highest edge by the model, as
``betml backtest --strategy dqn`` acts on that market: :func:`stake_markets` builds the
observation with the environment's own code (:class:`rl.env.Markets`,
:func:`rl.env.market_observation`) and takes the policy's greedy action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ray import serve

from betting.errors import InvalidInput
from rl.env import Markets, market_observation
from rl.policy import DECISION_OUTPUT, ExportedPolicy
from serve.agent_rows import AgentQuery, BankrollState
from serve.config import AgentDeploymentArgs
from serve.errors import BadRequest, ServeError, as_serve_error
from serve.models import ModelInfo, ModelSlot, RegistryLoader, SlotHost

#: Separates a query's index from its event key while queries are scored together.
_TAG = "\x1e"


@dataclass(frozen=True)
class AgentAnswer:
    """The agent's answer to one query: a stake per market, or an error.

    ``stakes`` has columns :data:`rl.policy.DECISION_OUTPUT` (``event_key``, ``market_key``,
    ``selection``: the market's highest-edge selection, ``fraction``: of the bankroll, 0 for
    no bet), one row per market of the query.
    """

    stakes: pd.DataFrame | None = None
    model: ModelInfo | None = None
    error: ServeError | None = None


def stake_markets(
    policy: ExportedPolicy, frames: Sequence[pd.DataFrame], states: Sequence[BankrollState]
) -> list[pd.DataFrame]:
    """The policy's stake on every market of each frame, observed from its bankroll state.

    All markets go through the network in one call; each frame's answer has one row per market
    (columns :data:`rl.policy.DECISION_OUTPUT`, markets in start-time order).

    Args:
        policy: the staking policy.
        frames: decision rows of whole markets, one frame per query.
        states: the bankroll state of each frame.

    Raises:
        InvalidInput: a frame lacks a column the policy observes, or frames and states differ
            in number.
    """
    if len(frames) != len(states):
        raise InvalidInput(f"{len(frames)} frames but {len(states)} bankroll states")
    tagged = [f.assign(event_key=f"{i}{_TAG}" + f["event_key"].astype(str))
              for i, f in enumerate(frames)]  # fmt: skip
    markets = Markets(pd.concat(tagged, ignore_index=True), policy.env_config)
    keys = markets.rows["event_key"].str.split(_TAG, n=1, expand=True)
    query = keys[0].astype(int).to_numpy()
    observations = np.zeros((len(markets), len(policy.observation_names)), dtype=np.float32)
    for m, q in enumerate(query):
        state = states[q]
        observations[m] = market_observation(
            markets.static[m], log_bankroll=state.log_bankroll, drawdown=state.drawdown,
            recent_return=state.recent_return, progress=state.progress,
        )  # fmt: skip
    fractions = policy.stake_fractions(policy.act(observations))
    out = markets.rows[DECISION_OUTPUT[:-1]].assign(event_key=keys[1].to_numpy())
    out["fraction"] = fractions
    return [out[query == i].reset_index(drop=True) for i in range(len(frames))]


@serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.25})
class StrategyAgent(SlotHost):
    """Stakes markets with registered DQN policies (see the module docstring).

    Args:
        args: the ``agent`` part of :class:`~serve.config.ServeArgs`.
        registry: where policies come from.
    """

    async def __init__(self, args: AgentDeploymentArgs, registry: RegistryLoader) -> None:  # type: ignore[misc]
        self.args = args
        self._start_slots(registry, args.alias, args.poll_interval_s, args.preload)
        self.decide_batch.set_max_batch_size(args.max_batch_size)  # type: ignore[attr-defined]
        self.decide_batch.set_batch_wait_timeout_s(args.batch_wait_timeout_s)  # type: ignore[attr-defined]

    @serve.multiplexed(max_num_models_per_replica=8)
    async def get_model(self, ref: str) -> ModelSlot:
        """The slot of policy ``name@alias``, created (its first load started) on first use.

        Raises:
            ResourceNotFound: no such registered policy or alias.
        """
        return await self._open_slot(ref)

    async def decide(self, query: AgentQuery) -> AgentAnswer:
        """The stake of every market of ``query`` by the policy named by the request's
        multiplexed model id."""
        return await self.decide_batch(query)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def decide_batch(self, queries: list[AgentQuery]) -> list[AgentAnswer]:
        """One forward pass over the markets of every query of the batch (all of one policy:
        Serve splits batches by multiplexed model id)."""
        ref = serve.get_multiplexed_model_id()
        try:
            if not ref:
                raise InvalidInput("no policy named: send a multiplexed model id name@alias")
            model = (await self.get_model(ref)).require()
            policy = model.predictor
            if not isinstance(policy, ExportedPolicy):
                raise BadRequest.of(
                    "staking.include_agent_stake",
                    f"model {ref} is a {type(policy).__name__}, not a staking policy",
                )
        except Exception as e:  # noqa: BLE001 - every query of the batch gets the error
            error = as_serve_error(e, field="staking.include_agent_stake")
            return [AgentAnswer(error=error) for _ in queries]
        try:
            stakes = stake_markets(policy, [q.decisions for q in queries],
                                   [q.state for q in queries])  # fmt: skip
        except InvalidInput as e:
            error = as_serve_error(e, field="staking.include_agent_stake")
            return [AgentAnswer(error=error) for _ in queries]
        info = ModelInfo(model.name, model.version, model.alias, policy.meta.feature_schema_version)
        return [AgentAnswer(s, info) for s in stakes]
