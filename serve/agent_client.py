"""The ingress side of the strategy agent: the policy that stakes a market, its stake in the answer.

A prediction asked with ``staking.include_agent_stake`` is first answered by the outcome model
(:mod:`serve.predictions`); its market's decision rows (:func:`serve.agent_rows.decision_rows`,
from the answer's probabilities and prices) then go to the agent deployment
(:class:`serve.agent.StrategyAgent`), multiplexed by ``betml-<family>-<sport>-<market>@alias``,
one call per policy for however many markets ask it. The stake comes back into the answer:
``agent_stake_fraction`` on every selection (the agent's fraction on its selection, 0 on the
others), ``agent_stake`` with a bankroll, and ``agent_model``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pandas as pd
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from betting.errors import InvalidInput
from cluster import tracking
from serve.agent_rows import NEUTRAL_STATE, AgentQuery, BankrollState, decision_rows
from serve.config import AgentDeploymentArgs
from serve.errors import ModelUnavailable, ResourceNotFound, ServeError
from serve.models import model_id
from serve.predictions import add_agent_stake
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import MarketRequest

#: Separates an ask's position in its group from its event key in a shared agent call.
_TAG = "\x1f"


@dataclass
class AgentAsk:
    """One answered market whose agent stake is wanted."""

    item: MarketRequest
    sport: str
    rows: pd.DataFrame
    """The market's selection rows with features, in the answer's selection order."""
    response: pb.GetPredictionResponse
    """The outcome model's answer; the agent's fields are filled in place."""
    state: BankrollState = NEUTRAL_STATE


class AgentClient:
    """Asks the agent deployment for stakes.

    Args:
        args: the application's agent settings; None when it serves no agent.
        handle: the agent deployment's handle (None with ``args``).
    """

    def __init__(self, args: AgentDeploymentArgs | None, handle: Any | None) -> None:
        self.args = args
        self.handle = handle
        self._handles: dict[str, Any] = {}

    def policy_of(self, item: MarketRequest, sport: str) -> str:
        """``name@alias`` of the policy staking ``item``'s market.

        Raises:
            ResourceNotFound: the application serves no agent, or the market has no name.
        """
        if self.args is None or self.handle is None:
            raise ResourceNotFound(
                "model", f"agent/{sport}/{item.market_key}",
                "staking.include_agent_stake: this application serves no strategy agent",
            )  # fmt: skip
        try:
            name = tracking.model_name(
                self.args.family, sport, tracking.market_slug(item.market_key)
            )
        except InvalidInput as e:
            raise ResourceNotFound(
                "model", f"agent/{sport}/{item.market_key}",
                f"no strategy agent stakes sport {sport!r} market {item.market_key!r}: {e}",
            ) from e  # fmt: skip
        return model_id(name, self.args.alias)

    async def add_stakes(self, asks: list[AgentAsk]) -> list[ServeError | None]:
        """Fill the agent's fields of each ask's answer; per ask, the error it got or None."""
        errors: list[ServeError | None] = [None] * len(asks)
        groups: dict[str, list[int]] = {}
        for i, ask in enumerate(asks):
            try:
                groups.setdefault(self.policy_of(ask.item, ask.sport), []).append(i)
            except ServeError as e:
                errors[i] = e
        by_state: dict[tuple[str, BankrollState], list[int]] = {}
        for ref, members in groups.items():
            for i in members:
                by_state.setdefault((ref, asks[i].state), []).append(i)
        results = await asyncio.gather(
            *(self._stake_group(ref, state, [asks[i] for i in members])
              for (ref, state), members in by_state.items())
        )  # fmt: skip
        for members, group_errors in zip(by_state.values(), results, strict=True):
            for i, error in zip(members, group_errors, strict=True):
                errors[i] = error
        return errors

    async def _stake_group(
        self, ref: str, state: BankrollState, asks: list[AgentAsk]
    ) -> list[ServeError | None]:
        frames = []
        for n, ask in enumerate(asks):
            selections = ask.response.selections
            rows = decision_rows(
                ask.rows, [s.probability for s in selections], [s.odds for s in selections]
            )
            frames.append(rows.assign(event_key=f"{n}{_TAG}" + rows["event_key"].astype(str)))
        query = AgentQuery(pd.concat(frames, ignore_index=True), state)
        if ref not in self._handles:
            self._handles[ref] = self.handle.options(multiplexed_model_id=ref)  # type: ignore[union-attr]
        try:
            answer = await self._handles[ref].decide.remote(query)
        except (DeploymentUnavailableError, RayActorError, BackPressureError) as e:
            error: ServeError = ModelUnavailable(f"the agent deployment is unavailable: {e}")
            return [error] * len(asks)
        if answer.error is not None:
            return [answer.error] * len(asks)
        stakes = answer.stakes
        position = stakes["event_key"].str.split(_TAG, n=1).str[0].astype(int).to_numpy()
        for n, ask in enumerate(asks):
            [row] = stakes[position == n].itertuples(index=False)
            bankroll = ask.item.staking.bankroll
            add_agent_stake(ask.response, str(row.selection), float(row.fraction), answer.model,
                            bankroll)  # fmt: skip
        return [None] * len(asks)
