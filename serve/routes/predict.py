"""Predictions over HTTP: the GetPrediction and BatchPredict RPCs under ``/api/v1/predict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from serve import http
from serve.errors import BadRequest
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.routes.common import ApiKeyHeader, answer, answer_proto

if TYPE_CHECKING:
    from serve.ingress import Ingress


#: The market key of a race's winner market.
WIN_MARKET = "win"


class RunnerChance(BaseModel):
    position: int = Field(description="Rank by model probability, 1 = the favourite.")
    selection: str
    probability: float
    fair_odds: float


class RaceOutcomeResponse(BaseModel):
    prediction: http.PredictionResponse
    ranking: list[RunnerChance] = Field(description="Runners by model probability, best first.")


def _check_race(body: http.PredictionRequest) -> None:
    """A race-outcome request names a race's win market."""
    if body.raw_event is not None:
        if body.raw_event.race is None:
            raise BadRequest.of("raw_event.race", "a race-outcome request needs a race's runners")
        markets = body.raw_event.markets
        chosen = [m for m in markets if m.market_key == (body.market_key or m.market_key)]
        if len(chosen) == 1 and chosen[0].type != "MARKET_TYPE_WIN":
            raise BadRequest.of(
                "market_key",
                f"market {chosen[0].market_key!r} is {chosen[0].type}, not a win market",
            )
    elif body.market_key != WIN_MARKET:
        raise BadRequest.of(
            "market_key", f"a race-outcome request predicts the {WIN_MARKET!r} market, "
            f"got {body.market_key!r}",
        )  # fmt: skip


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/predict", tags=["predict"])
    service = ingress.service

    @routes.post("/ensemble-prediction", response_model=http.PredictionResponse)
    async def ensemble_prediction(
        body: http.PredictionRequest, x_api_key: ApiKeyHeader = None
    ) -> Any:
        """GetPrediction over HTTP: one market's probabilities and recommendations."""
        return await answer_proto(
            ingress,
            lambda: service.get_prediction(http.to_proto(body, pb.GetPredictionRequest())),
            x_api_key,
        )

    @routes.post("/batch", response_model=http.BatchPredictionResponse)
    async def batch(body: http.BatchPredictionRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """BatchPredict over HTTP: many markets, errors per item."""
        return await answer_proto(
            ingress,
            lambda: service.batch_predict(http.to_proto(body, pb.BatchPredictRequest())),
            x_api_key,
        )

    @routes.post("/race-outcome", response_model=RaceOutcomeResponse)
    async def race_outcome(body: http.PredictionRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """A race's win market: each runner's probability and recommendation, and the runners
        ranked by their chance."""

        async def predicted() -> dict[str, Any]:
            _check_race(body)
            prediction = await service.get_prediction(
                http.to_proto(body, pb.GetPredictionRequest())
            )
            ranked = sorted(prediction.selections, key=lambda s: s.probability, reverse=True)
            return {
                "prediction": http.from_proto(prediction),
                "ranking": [
                    {"position": n, "selection": s.selection, "probability": s.probability,
                     "fair_odds": s.fair_odds}
                    for n, s in enumerate(ranked, start=1)
                ],
            }  # fmt: skip

        return await answer(ingress, predicted, x_api_key)

    return routes
