"""Training behind the API: start a sweep or a training run as a Ray job, and follow it.

``POST /api/v1/models/train`` turns a :class:`TrainingRequest` into a ``betml sweep|train``
command and submits it with :mod:`cluster.jobs` to the cluster the application runs on (the
head's Jobs API: ``RAY_API_SERVER_ADDRESS``, else the dashboard this Ray instance advertises).
The job's MLflow runs carry its submission id (tag ``betml.job_id``), so its progress (trials
started and finished, the best validation score so far, the refitted run and the registered
version) is read back from MLflow while it runs. The job gets the application's store and
MLflow settings, so what it registers is what the application serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from mlflow import MlflowClient
from pydantic import ValidationError

from betting.errors import ConfigError, NotFound
from cluster import jobs, tracking
from cluster.ray_runtime import repo_root
from cluster.retraining import (
    PURPOSE_KEY,
    PURPOSE_RETRAINING,
    PURPOSE_TRAINING,
    TrainingRequest,
)
from cluster.settings import Settings
from serve.errors import BadRequest, FieldViolation, ModelUnavailable, ResourceNotFound
from serve.proto.betml.v1 import ml_service_pb2 as pb

logger = logging.getLogger(__name__)

PURPOSES = (PURPOSE_TRAINING, PURPOSE_RETRAINING)
#: The validation metric sweeps report per trial (lower is better).
SWEEP_METRIC = "valid/log_loss"


@dataclass(frozen=True)
class TrainingProgress:
    """What the job's MLflow runs say so far."""

    trials_started: int = 0
    trials_finished: int = 0
    best_metric: float | None = None
    metric: str | None = None
    mlflow_run_id: str | None = None
    """The run that logged the trained (refitted) model."""
    model_name: str | None = None
    registered_version: int | None = None


@dataclass(frozen=True)
class TrainingJob:
    """A training job as the API reports it."""

    job_id: str
    status: str
    purpose: str
    command: str
    message: str | None
    start_time: datetime | None
    end_time: datetime | None
    duration_s: float | None
    exit_code: int | None
    log_tail: str | None
    progress: TrainingProgress = field(default_factory=TrainingProgress)


def jobs_address() -> str:
    """The Jobs API of the cluster this process runs on.

    ``RAY_API_SERVER_ADDRESS`` (or an http ``RAY_ADDRESS``) when set; else the dashboard URL
    the connected Ray instance advertises in its internal KV (semi-private Ray API, read only).
    """
    try:
        return jobs.resolve_address()
    except ConfigError:
        import ray
        from ray._private.services import get_webui_url_from_internal_kv

        url = get_webui_url_from_internal_kv() if ray.is_initialized() else None
        if not url:
            raise
        return url if url.startswith("http") else f"http://{url}"


def job_progress(client: MlflowClient, experiment: str, job_id: str) -> TrainingProgress:
    """Progress of job ``job_id`` from the MLflow runs tagged with it."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return TrainingProgress()
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{tracking.TAG_JOB_ID}` = '{job_id}'",
        max_results=5000,
    )
    trials = [r for r in runs if tracking.TAG_SWEEP in r.data.tags]
    scores = [r.data.metrics[SWEEP_METRIC] for r in trials if SWEEP_METRIC in r.data.metrics]
    trained = [r for r in runs if tracking.TAG_SWEEP not in r.data.tags
               and tracking.TAG_FAMILY in r.data.tags]  # fmt: skip
    run = max(trained, key=lambda r: r.info.start_time) if trained else None
    name = version = None
    if run is not None:
        for registered in client.search_model_versions(f"run_id = '{run.info.run_id}'"):
            name, version = registered.name, int(registered.version)
    return TrainingProgress(
        trials_started=len(trials),
        trials_finished=sum(r.info.status == "FINISHED" for r in trials),
        best_metric=min(scores) if scores else None,
        metric=SWEEP_METRIC if trials else None,
        mlflow_run_id=run.info.run_id if run else None,
        model_name=name,
        registered_version=version,
    )


class TrainingJobs:
    """Start and follow training jobs for the API.

    Args:
        settings: the application's settings (its store and MLflow go to the jobs).
        counted: called with ``(family, status)`` for ``ml_training_jobs_total``.
        address: the Jobs API; default :func:`jobs_address` on first use.
    """

    def __init__(
        self,
        settings: Settings,
        counted: Callable[[str, str], None] = lambda family, status: None,
        address: str | None = None,
    ) -> None:
        self.settings = settings
        self.counted = counted
        self._address = address
        self._client: MlflowClient | None = None
        self._ended: set[str] = set()

    def address(self) -> str:
        if self._address is None:
            try:
                self._address = jobs_address()
            except ConfigError as e:
                raise ModelUnavailable(f"training jobs cannot be submitted here: {e}", 30.0) from e
        return self._address

    def mlflow(self) -> MlflowClient:
        if self._client is None:
            uri = self.settings.mlflow_tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def job_env(self) -> dict[str, str]:
        """The store and MLflow of this application, for the job's processes."""
        return {
            "DATABASE_URL": self.settings.database_url,
            "MLFLOW_TRACKING_URI": self.settings.mlflow_tracking_uri,
            "MLFLOW_EXPERIMENT_NAME": self.settings.mlflow_experiment_name,
            "BETML_DATA_DIR": str(self.settings.data_dir.resolve()),
        }

    async def start(self, request: TrainingRequest) -> TrainingJob:
        """Submit the request's command as a Ray job; its first status."""
        if not (repo_root() / request.config).is_file():
            raise BadRequest.of("config", f"{request.config} is not a config file of betml")
        meta = {PURPOSE_KEY: PURPOSE_TRAINING, "betml.family": request.family}
        try:
            record = await asyncio.to_thread(
                jobs.submit, request.command(), address=self.address(),
                metadata=meta, env_vars=self.job_env(),
            )  # fmt: skip
        except Exception:
            self.counted(request.family, "refused")
            raise
        self.counted(request.family, "submitted")
        logger.info("training job %s submitted: betml %s", record.submission_id, record.command)
        return self._job(record, TrainingProgress())

    async def get(self, job_id: str) -> TrainingJob:
        try:
            record = await asyncio.to_thread(jobs.status, job_id, address=self.address())
        except NotFound as e:
            raise ResourceNotFound("training job", job_id, str(e)) from e
        if record.metadata.get(PURPOSE_KEY) not in PURPOSES:
            raise ResourceNotFound("training job", job_id, f"job {job_id!r} is not a training job")
        progress = await asyncio.to_thread(
            job_progress, self.mlflow(), self.settings.mlflow_experiment_name, job_id
        )
        return self._job(record, progress)

    async def list(self) -> list[TrainingJob]:
        records = await asyncio.to_thread(jobs.list_jobs, address=self.address())
        ours = [r for r in records if r.metadata.get(PURPOSE_KEY) in PURPOSES]
        return [self._job(r, TrainingProgress()) for r in ours]

    def _job(self, record: jobs.JobRecord, progress: TrainingProgress) -> TrainingJob:
        if record.terminal and record.submission_id not in self._ended:
            self._ended.add(record.submission_id)
            self.counted(record.metadata.get("betml.family", "unknown"), record.status.lower())
        return TrainingJob(
            job_id=record.submission_id,
            status=record.status,
            purpose=record.metadata.get(PURPOSE_KEY, ""),
            command=record.command,
            message=record.message,
            start_time=record.start_time,
            end_time=record.end_time,
            duration_s=record.duration_s,
            exit_code=record.exit_code,
            log_tail=record.log_tail,
            progress=progress,
        )


def as_dict(job: TrainingJob) -> dict[str, Any]:
    """A job as the JSON the routes answer."""
    return asdict(job)


def training_request(request: pb.StartTrainingRequest) -> TrainingRequest:
    """The checked request of StartTraining (INVALID_ARGUMENT naming each bad field)."""
    fields: dict[str, Any] = {
        "family": request.family,
        "config": request.config,
        "promote": request.promote,
        "mode": request.mode or "sweep",
    }
    if request.HasField("trials"):
        fields["trials"] = request.trials
    try:
        return TrainingRequest.model_validate(fields)
    except ValidationError as e:
        violations = []
        for problem in e.errors():
            where = ".".join(str(p) for p in problem["loc"]) or "request"
            violations.append(FieldViolation(where, f"{problem['msg']} (got {problem['input']!r})"))
        raise BadRequest(violations) from e


def job_message(job: TrainingJob) -> pb.TrainingJob:
    """A job as the gRPC answer."""
    out = pb.TrainingJob(
        job_id=job.job_id, status=job.status, purpose=job.purpose, command=job.command,
        message=job.message or "", log_tail=job.log_tail or "",
    )  # fmt: skip
    if job.start_time is not None:
        out.start_time.FromDatetime(job.start_time)
    if job.end_time is not None:
        out.end_time.FromDatetime(job.end_time)
    if job.exit_code is not None:
        out.exit_code = job.exit_code
    p = job.progress
    out.progress.CopyFrom(pb.TrainingProgress(
        trials_started=p.trials_started, trials_finished=p.trials_finished,
        metric=p.metric or "", mlflow_run_id=p.mlflow_run_id or "", model_name=p.model_name or "",
    ))  # fmt: skip
    if p.best_metric is not None:
        out.progress.best_metric = p.best_metric
    if p.registered_version is not None:
        out.progress.registered_version = p.registered_version
    return out
