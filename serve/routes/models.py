"""The model registry over HTTP: list, promote, and training jobs (``/api/v1/models``)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from mlflow import MlflowClient
from pydantic import BaseModel, ConfigDict, Field

from cluster import tracking
from serve.routes.common import ApiKeyHeader, answer

if TYPE_CHECKING:
    from serve.ingress import Ingress


class AliasHolder(BaseModel):
    """The version an alias points at and its holdout score."""

    version: int
    score: float | None = Field(description="Holdout score, lower is better (log loss unless "
                                "the model names another score).")  # fmt: skip
    holdout_id: str | None


class RegisteredModel(BaseModel):
    """One registered betml model."""

    name: str
    versions: int
    champion: AliasHolder | None
    challenger: AliasHolder | None


class ModelList(BaseModel):
    models: list[RegisteredModel]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="Promote even when the gate would refuse.")


class PromotionResponse(BaseModel):
    """What the promotion gate decided and the scores it compared (lower is better)."""

    name: str
    promoted: bool
    reason: str
    challenger_version: int
    challenger_score: float | None
    champion_version: int | None
    champion_score: float | None
    score_name: str


def _holder(version: int | None, score: float | None, holdout: str | None) -> AliasHolder | None:
    return (
        None if version is None else AliasHolder(version=version, score=score, holdout_id=holdout)
    )


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/models", tags=["models"])
    clients: dict[str, MlflowClient] = {}

    def client() -> MlflowClient:
        uri = ingress.settings.mlflow_tracking_uri
        if uri not in clients:
            clients[uri] = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return clients[uri]

    @routes.get("", response_model=ModelList)
    async def list_models(x_api_key: ApiKeyHeader = None) -> Any:
        """Every registered betml model with its champion and challenger."""

        async def listed() -> ModelList:
            summaries = await asyncio.to_thread(tracking.list_models, client=client())
            return ModelList(models=[
                RegisteredModel(
                    name=s.name, versions=s.versions,
                    champion=_holder(s.champion_version, s.champion_log_loss,
                                     s.champion_holdout_id),
                    challenger=_holder(s.challenger_version, s.challenger_log_loss,
                                       s.challenger_holdout_id),
                )
                for s in summaries
            ])  # fmt: skip

        return await answer(ingress, listed, x_api_key)

    @routes.post("/{name}/promote", response_model=PromotionResponse)
    async def promote(
        name: str, body: PromoteRequest | None = None, x_api_key: ApiKeyHeader = None
    ) -> Any:
        """Run the promotion gate: the challenger becomes champion when it beats the champion on
        the same holdout (or ``force``). Serving replicas switch to it without dropping requests."""
        force = body.force if body is not None else False

        async def promoted() -> PromotionResponse:
            decision = await asyncio.to_thread(tracking.promote, name, force=force, client=client())
            fields = asdict(decision)
            return PromotionResponse(
                **{k: v for k, v in fields.items() if k in PromotionResponse.model_fields},
                challenger_score=decision.challenger_log_loss,
                champion_score=decision.champion_log_loss,
            )

        return await answer(ingress, promoted, x_api_key, "write")

    return routes
