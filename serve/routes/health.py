"""Health: ``/health/live`` (the replica is up), ``/health`` and ``/api/v1/health`` (per-model
states), ``/health/ready`` (200 only when every model is loaded)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve import http
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.routes.common import answer_proto

if TYPE_CHECKING:
    from serve.ingress import Ingress


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(tags=["health"])
    service = ingress.service

    @routes.get("/health/live")
    async def live() -> dict[str, str]:
        """The replica is up (it says nothing about the models)."""
        return {"status": "alive"}

    async def health() -> Any:
        """The service's status and each model's load state (HealthCheck over HTTP)."""
        return await answer_proto(ingress, service.health_check, None, "open")

    routes.get("/health", response_model=http.HealthResponse)(health)
    routes.get("/api/v1/health", response_model=http.HealthResponse)(health)

    @routes.get("/health/ready", response_model=http.HealthResponse)
    async def ready() -> Any:
        """200 when every model is loaded, 503 otherwise."""
        body = http.from_proto(await service.health_check())
        serving = body["status"] == pb.ServingStatus.Name(pb.SERVING_STATUS_SERVING)
        return JSONResponse(body, status_code=200 if serving else 503)

    return routes
