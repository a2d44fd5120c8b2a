"""The model registry over HTTP: list, promote, and training jobs (``/api/v1/models``)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cluster import tracking
from serve.routes.common import ApiKeyHeader, answer
from serve.training_jobs import TrainingRequest, as_dict

if TYPE_CHECKING:
    from serve.ingress import Ingress


class AliasHolder(BaseModel):
    """The version an alias points at and its holdout score."""

    version: int
    score: float | None = Field(description="Holdout score, lower is better (log loss unless "
                                "the model names another score).")  # fmt: skip
    holdout_id: str | None


class LiveScore(BaseModel):
    """One version's served predictions whose markets have settled, scored."""

    model_version: str
    markets: int
    log_loss: float | None
    brier: float | None
    ece: float | None
    clv: float | None = Field(description="Mean closing-line value of the implied value bets.")
    clv_bets: int
    first_at: datetime | None
    last_at: datetime | None


class RegisteredModel(BaseModel):
    """One registered betml model."""

    name: str
    versions: int
    champion: AliasHolder | None
    challenger: AliasHolder | None
    live: list[LiveScore] = Field(
        description="Live scores of its served versions (settled predictions), newest first."
    )


class ModelList(BaseModel):
    models: list[RegisteredModel]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="Promote even when the gate would refuse.")


class TrainingProgress(BaseModel):
    trials_started: int
    trials_finished: int
    best_metric: float | None = Field(description="Best validation score so far (lower is better).")
    metric: str | None
    mlflow_run_id: str | None = Field(description="The run that logged the trained model.")
    model_name: str | None
    registered_version: int | None


class TrainingJob(BaseModel):
    """A training job on the cluster (a Ray job) and its progress."""

    job_id: str
    status: str = Field(description="PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.")
    purpose: str = Field(description="training (the API) or retraining (the feedback loop).")
    command: str
    message: str | None
    start_time: datetime | None
    end_time: datetime | None
    duration_s: float | None
    exit_code: int | None
    log_tail: str | None = Field(description="A failed job's last log lines.")
    progress: TrainingProgress


class TrainingJobList(BaseModel):
    jobs: list[TrainingJob]


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
    client = ingress.mlflow

    @routes.get("", response_model=ModelList)
    async def list_models(refresh: bool = False, x_api_key: ApiKeyHeader = None) -> Any:
        """Every registered betml model with its champion and challenger (holdout scores) and
        the live scores of its served versions (refreshed every minute, or now with
        ``?refresh=true``)."""

        async def listed() -> ModelList:
            if refresh:
                await ingress.live.refresh()
            summaries = await asyncio.to_thread(tracking.list_models, client=client())
            return ModelList(models=[
                RegisteredModel(
                    name=s.name, versions=s.versions,
                    champion=_holder(s.champion_version, s.champion_log_loss,
                                     s.champion_holdout_id),
                    challenger=_holder(s.challenger_version, s.challenger_log_loss,
                                       s.challenger_holdout_id),
                    live=[LiveScore(**row) for row in ingress.live.of(s.name)],
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

    @routes.post("/train", response_model=TrainingJob, status_code=202)
    async def train(body: TrainingRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """Start ``betml sweep|train <family> --config <config>`` as a Ray job on the cluster;
        answers 202 with the job id to follow at ``/api/v1/models/training/{job_id}``."""

        async def started() -> Any:
            job = await ingress.training.start(body)
            return JSONResponse(jsonable_encoder(as_dict(job)), status_code=202)

        return await answer(ingress, started, x_api_key, "write")

    @routes.get("/training", response_model=TrainingJobList)
    async def training_jobs(x_api_key: ApiKeyHeader = None) -> Any:
        """Training and retraining jobs the cluster remembers, newest first."""

        async def listed() -> Any:
            return {"jobs": [as_dict(j) for j in await ingress.training.list()]}

        return await answer(ingress, listed, x_api_key)

    @routes.get("/training/{job_id}", response_model=TrainingJob)
    async def training_job(job_id: str, x_api_key: ApiKeyHeader = None) -> Any:
        """A training job's status, and its progress from MLflow: trials started and finished,
        the best validation score so far, the trained run and the version it registered."""

        async def found() -> Any:
            return as_dict(await ingress.training.get(job_id))

        return await answer(ingress, found, x_api_key)

    return routes
