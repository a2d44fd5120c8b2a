"""Predictions over HTTP: the GetPrediction and BatchPredict RPCs under ``/api/v1/predict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from serve import http
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.routes.common import ApiKeyHeader, answer_proto

if TYPE_CHECKING:
    from serve.ingress import Ingress


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

    return routes
