"""The strategy agent's stake on one market: POST /api/v1/predict/strategy-recommendation.

GetPrediction with the agent's stake (``staking.include_agent_stake`` is always on here),
reshaped around the one selection the agent sizes: the market's highest-edge selection by the
model. The request may give the bankroll state the agent stakes from (``agent_state``); by
default it is the neutral state an online request implies (:mod:`serve.agent_rows`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from betting.bankroll import best_edge_rows
from serve import http
from serve.agent_rows import BankrollState
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.routes.common import ApiKeyHeader, answer

if TYPE_CHECKING:
    from serve.ingress import Ingress

PATH = "/strategy-recommendation"


class AgentState(BaseModel):
    """The bankroll state the agent stakes from; every field defaults to the neutral state."""

    model_config = ConfigDict(extra="forbid")

    log_bankroll: FiniteFloat = 0.0
    """Log of the bankroll relative to the season's start (0: whole)."""
    drawdown: FiniteFloat = Field(default=0.0, ge=0.0, lt=1.0)
    """Fall from the peak bankroll, a fraction of the peak."""
    recent_return: FiniteFloat = 0.0
    """Mean return on bankroll of the last bets (0.01 = +1% per bet)."""
    progress: FiniteFloat = Field(default=0.0, ge=0.0, le=1.0)
    """Share of the season's markets already played."""


class StrategyRecommendationRequest(http.PredictionRequest):
    """A market (``raw_event`` or stored ``event_key``) to stake with the agent."""

    agent_state: AgentState = Field(default_factory=lambda: AgentState())
    """The bankroll state the agent stakes from (default: neutral). ``staking.bankroll`` is the
    amount its fraction is of; ``staking.include_agent_stake`` is always on here."""


class StrategyRecommendation(BaseModel):
    """The agent's stake on its selection, with the model's recommendation of every selection."""

    event_key: str
    market_key: str
    selection: str = Field(description="The selection the agent sizes: the highest edge.")
    agent_stake_fraction: float = Field(description="Of the bankroll; 0: no bet.")
    agent_stake: float | None = Field(None, description="In currency units, with a bankroll.")
    is_bet: bool
    recommendation: http.SelectionPrediction
    selections: list[http.SelectionPrediction]
    model: http.ModelInfo
    agent_model: http.ModelInfo
    agent_state: AgentState
    predicted_at: datetime


def recommendation(prediction: dict[str, Any], state: AgentState) -> dict[str, Any]:
    """The route's answer from GetPrediction's answer (as JSON, with the agent's fields)."""
    selections = prediction["selections"]
    probabilities = [s["probability"] for s in selections]
    [chosen] = best_edge_rows(probabilities, [s["odds"] for s in selections], [0] * len(selections))
    pick = selections[int(chosen)]
    fraction = float(pick.get("agent_stake_fraction", 0.0))
    return {
        "event_key": prediction["event_key"], "market_key": prediction["market_key"],
        "selection": pick["selection"], "agent_stake_fraction": fraction,
        "agent_stake": pick.get("agent_stake"), "is_bet": fraction > 0.0,
        "recommendation": pick, "selections": selections, "model": prediction["model"],
        "agent_model": prediction["agent_model"], "agent_state": state.model_dump(),
        "predicted_at": prediction["predicted_at"],
    }  # fmt: skip


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/predict", tags=["predict"])
    service = ingress.service

    @routes.post(PATH, response_model=StrategyRecommendation)
    async def strategy_recommendation(
        body: StrategyRecommendationRequest, x_api_key: ApiKeyHeader = None
    ) -> Any:
        """The strategy agent's stake on one market (GetPrediction with include_agent_stake)."""

        async def call() -> dict[str, Any]:
            fields = body.model_dump(exclude={"agent_state"})
            request = http.to_proto(http.PredictionRequest.model_validate(fields),
                                    pb.GetPredictionRequest())  # fmt: skip
            request.staking.include_agent_stake = True
            state = BankrollState(**body.agent_state.model_dump())
            answer_ = await service.get_prediction(request, agent_state=state)
            return recommendation(http.from_proto(answer_), body.agent_state)

        return await answer(ingress, call, x_api_key)

    return routes
