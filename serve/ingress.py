"""The ingress deployment: ``betml.v1.MLService`` over gRPC and the HTTP API, in one replica.

Serve's gRPC proxy calls the method named like the RPC with the request message and a
``grpc_context``; the HTTP routes (built per replica by ``__serve_build_asgi_app__``) call the
same :class:`~serve.service.PredictionService`. Errors become a status code and details here,
once (:func:`serve.access.refusal`): a ``ServeError``'s code, message and rich details, or
INTERNAL with the request id for a bug.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from google.protobuf.message import Message
from mlflow import MlflowClient
from ray import serve
from ray.serve import metrics
from ray.serve.grpc_util import RayServegRPCContext
from sqlalchemy import Engine

from cluster.db import get_engine
from cluster.feature_store import FeatureStates, open_feature_store
from cluster.logging import configure_logging
from cluster.settings import get_settings
from serve import http
from serve.access import API_KEY_METADATA, Access, check_api_key, refusal, request_id
from serve.config import ServeArgs
from serve.errors import (
    STATUS_DETAILS_KEY,
    BadRequest,
    status_details,
)
from serve.feedback import FeedbackIntake
from serve.feedback_loop import FeedbackLoop
from serve.monitoring import LiveScores
from serve.online import OnlineFeatures
from serve.prediction_log import PredictionLog
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.routes import (
    backtests,
    events,
    features,
    health,
    models,
    predict,
    recommendations,
    strategies,
    visualize,
)
from serve.service import PredictionService, service_version
from serve.strategies import StrategyService, generation_counter
from serve.training_jobs import TrainingJobs, job_message, training_request

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)

#: Buckets of ml_prediction_latency_seconds.
LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]


class ServeMetrics:
    """The Prometheus metrics of DESIGN.md (Ray exports them with a ``ray_`` prefix)."""

    def __init__(self) -> None:
        self.predictions = metrics.Counter(
            "ml_predictions", description="Markets predicted.",
            tag_keys=("method", "model", "version"),  # type: ignore[arg-type]
        )  # fmt: skip
        self.latency = metrics.Histogram(
            "ml_prediction_latency_seconds", description="Time to answer a prediction RPC.",
            boundaries=LATENCY_BUCKETS, tag_keys=("method",),
        )  # fmt: skip
        self.errors = metrics.Counter(
            "ml_grpc_errors", description="RPCs answered with an error status.",
            tag_keys=("method", "code"),  # type: ignore[arg-type]
        )  # fmt: skip
        self.feedback = metrics.Counter(
            "ml_feedback_submitted", description="Backtest exports submitted, by outcome.",
            tag_keys=("status",),  # type: ignore[arg-type]  # added, skipped, refused
        )  # fmt: skip
        self.cache_hit_ratio = metrics.Gauge(
            "ml_cache_hit_ratio",
            description="Share of stored-event lookups answered from the replica's memory.",
            tag_keys=("cache",),  # type: ignore[arg-type]
        )
        self.training_jobs = metrics.Counter(
            "ml_training_jobs", description="Training jobs by model family and status.",
            tag_keys=("model", "status"),  # type: ignore[arg-type]
        )  # fmt: skip
        self.prediction_log_dropped = metrics.Counter(
            "ml_prediction_log_dropped",
            description="Prediction rows not logged (the store was down and the buffer full).",
        )


@serve.deployment(max_ongoing_requests=128, ray_actor_options={"num_cpus": 0.5})
@serve.ingress()
class Ingress:
    """gRPC methods and HTTP routes of the service.

    Args:
        args: the application's arguments.
        models: a DeploymentHandle per outcome-model deployment.
    """

    async def __init__(self, args: ServeArgs, models: Mapping[str, Any]) -> None:  # type: ignore[misc]
        self.settings = get_settings()
        configure_logging(self.settings.log_level, self.settings.effective_log_format)
        engine = get_engine  # opened (and migrated) on first use, with this replica's settings
        states = FeatureStates(
            lambda: engine(self.settings), open_feature_store(self.settings.feature_store_url)
        )
        features = OnlineFeatures(
            lambda: engine(self.settings), states, event_cache_size=args.features.event_cache_size
        )
        self.metrics = ServeMetrics()
        self.feedback = FeedbackIntake(self.store_engine, self._feedback_stored)
        self.prediction_log = _prediction_log(args, self.store_engine, self.metrics)
        self.service = PredictionService(args, features, models, self.prediction_log)
        self.training = TrainingJobs(
            self.settings,
            lambda model, status: self.metrics.training_jobs.inc(
                tags={"model": model, "status": status}
            ),
        )
        self.live = LiveScores(self.store_engine)
        loop = asyncio.get_running_loop()
        self._background = [loop.create_task(self.live.run())]
        for sport in args.features.warm_sports:
            self._background.append(loop.create_task(_warm(states, sport)))
        if args.features.answer_cache_size > 0:
            self._background.append(loop.create_task(_poll_versions(self.service)))
        self.feedback_loop: FeedbackLoop | None = None
        if args.retraining is not None:
            self.feedback_loop = FeedbackLoop(
                args.retraining, self.store_engine, self.training, self.live
            )
            self._background.append(loop.create_task(self.feedback_loop.run()))
        self.strategies = StrategyService(
            self.service, self.store_engine, generations=generation_counter()
        )

    def _feedback_stored(self, status: str) -> None:
        self.metrics.feedback.inc(tags={"status": status})
        if status == "added" and self.feedback_loop is not None:
            self.feedback_loop.after_feedback()

    def mlflow(self) -> MlflowClient:
        """The application's MLflow tracking and registry client (created on first use)."""
        return self.training.mlflow()

    def store_engine(self) -> Engine:
        """The store's engine (opened and migrated on first use; call it off the event loop)."""
        return get_engine(self.settings)

    async def __del__(self) -> None:
        """Serve calls this when the replica shuts down: write the predictions still waiting."""
        if self.prediction_log is not None:
            await self.prediction_log.close()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_http_app(self)

    # --- gRPC ------------------------------------------------------------------------------

    async def _answer(
        self,
        method: str,
        call: Callable[[], Awaitable[R]],
        empty: type[R],
        grpc_context: RayServegRPCContext,
        access: Access,
    ) -> R:
        started, rid = time.perf_counter(), request_id()
        key = dict(grpc_context.invocation_metadata()).get(API_KEY_METADATA)
        try:
            check_api_key(key, access=access, settings=self.settings)
            response = await call()
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            error = refusal(e, method, rid)
            grpc_context.set_code(error.code)
            grpc_context.set_details(str(error))
            details = [(STATUS_DETAILS_KEY, status_details(error))]
            grpc_context.set_trailing_metadata(details)  # type: ignore[arg-type]  # bytes: a -bin key
            self.metrics.errors.inc(tags={"method": method, "code": error.code.name})
            logger.info(
                "%s refused: %s %s", method, error.code.name, error,
                extra={"request_id": rid, "rpc": method, "code": error.code.name},
            )  # fmt: skip
            return empty()
        self._record(method, response, time.perf_counter() - started, rid)
        return response

    def _record(self, method: str, response: Message, seconds: float, request_id: str) -> None:
        answers: list[pb.GetPredictionResponse] = []
        if isinstance(response, pb.GetPredictionResponse):
            answers = [response]
        elif isinstance(response, pb.BatchPredictResponse):
            answers = [r.prediction for r in response.results if r.HasField("prediction")]
        if not answers:
            return
        if (ratio := self.service.event_cache.ratio) is not None:
            self.metrics.cache_hit_ratio.set(ratio, tags={"cache": "events"})
        if (ratio := self.service.answers.counts.ratio) is not None:
            self.metrics.cache_hit_ratio.set(ratio, tags={"cache": "answers"})
        self.metrics.latency.observe(seconds, tags={"method": method})
        for answer in answers:
            tags = {"method": method, "model": answer.model.name, "version": answer.model.version}
            self.metrics.predictions.inc(tags=tags)
        first = answers[0].model
        logger.info(
            "%s answered %d market(s) in %.1f ms", method, len(answers), seconds * 1000,
            extra={"request_id": request_id, "rpc": method, "model": first.name,
                   "model_version": first.version, "markets": len(answers)},
        )  # fmt: skip

    async def GetPrediction(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.GetPredictionRequest, grpc_context: RayServegRPCContext
    ) -> pb.GetPredictionResponse:
        return await self._answer(
            "GetPrediction", lambda: self.service.get_prediction(request),
            pb.GetPredictionResponse, grpc_context, "read",
        )  # fmt: skip

    async def BatchPredict(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.BatchPredictRequest, grpc_context: RayServegRPCContext
    ) -> pb.BatchPredictResponse:
        return await self._answer(
            "BatchPredict", lambda: self.service.batch_predict(request),
            pb.BatchPredictResponse, grpc_context, "read",
        )  # fmt: skip

    async def GetFeatures(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.GetFeaturesRequest, grpc_context: RayServegRPCContext
    ) -> pb.GetFeaturesResponse:
        return await self._answer(
            "GetFeatures", lambda: self.service.get_features(request),
            pb.GetFeaturesResponse, grpc_context, "read",
        )  # fmt: skip

    async def HealthCheck(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.HealthCheckRequest, grpc_context: RayServegRPCContext
    ) -> pb.HealthCheckResponse:
        return await self._answer(
            "HealthCheck", self.service.health_check, pb.HealthCheckResponse, grpc_context, "open"
        )

    async def StartTraining(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.StartTrainingRequest, grpc_context: RayServegRPCContext
    ) -> pb.StartTrainingResponse:
        async def start() -> pb.StartTrainingResponse:
            job = await self.training.start(training_request(request))
            return pb.StartTrainingResponse(job=job_message(job))

        return await self._answer(
            "StartTraining", start, pb.StartTrainingResponse, grpc_context, "write"
        )

    async def GetTrainingJob(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.GetTrainingJobRequest, grpc_context: RayServegRPCContext
    ) -> pb.GetTrainingJobResponse:
        async def get() -> pb.GetTrainingJobResponse:
            if not request.job_id:
                raise BadRequest.of("job_id", "is required")
            job = await self.training.get(request.job_id)
            return pb.GetTrainingJobResponse(job=job_message(job))

        return await self._answer(
            "GetTrainingJob", get, pb.GetTrainingJobResponse, grpc_context, "read"
        )

    async def ListTrainingJobs(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.ListTrainingJobsRequest, grpc_context: RayServegRPCContext
    ) -> pb.ListTrainingJobsResponse:
        async def listed() -> pb.ListTrainingJobsResponse:
            jobs = await self.training.list()
            return pb.ListTrainingJobsResponse(jobs=[job_message(j) for j in jobs])

        return await self._answer(
            "ListTrainingJobs", listed, pb.ListTrainingJobsResponse, grpc_context, "read"
        )

    async def EvaluateStrategy(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.EvaluateStrategyRequest, grpc_context: RayServegRPCContext
    ) -> pb.EvaluateStrategyResponse:
        return await self._answer(
            "EvaluateStrategy", lambda: self.strategies.evaluate(request),
            pb.EvaluateStrategyResponse, grpc_context, "read",
        )  # fmt: skip

    async def GenerateStrategy(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.GenerateStrategyRequest, grpc_context: RayServegRPCContext
    ) -> pb.GenerateStrategyResponse:
        return await self._answer(
            "GenerateStrategy", lambda: self.strategies.generate(request),
            pb.GenerateStrategyResponse, grpc_context, "read",
        )  # fmt: skip

    async def SubmitBacktestFeedback(  # noqa: N802 - Serve calls the method named like the RPC
        self, request: pb.SubmitBacktestFeedbackRequest, grpc_context: RayServegRPCContext
    ) -> pb.SubmitBacktestFeedbackResponse:
        return await self._answer(
            "SubmitBacktestFeedback", lambda: self.feedback.submit(request),
            pb.SubmitBacktestFeedbackResponse, grpc_context, "write",
        )  # fmt: skip


def _prediction_log(
    args: ServeArgs, engine: Callable[[], Engine], serve_metrics: ServeMetrics
) -> PredictionLog | None:
    options = args.prediction_log
    if not options.enabled:
        return None
    return PredictionLog(
        engine, flush_interval_s=options.flush_interval_s, flush_rows=options.flush_rows,
        max_buffered_rows=options.max_buffered_rows,
        on_drop=lambda n: serve_metrics.prediction_log_dropped.inc(n),
    )  # fmt: skip


def build_http_app(ingress: Ingress) -> FastAPI:
    """The HTTP API of one ingress replica: one router per area (:mod:`serve.routes`)."""
    app = FastAPI(
        title="betml",
        version=service_version(),
        description="betml's models over HTTP; the same service as betml.v1.MLService (gRPC).",
    )
    app.add_exception_handler(RequestValidationError, http.validation_error)
    app.include_router(health.router(ingress))
    app.include_router(backtests.router(ingress))
    app.include_router(events.router(ingress))
    app.include_router(predict.router(ingress))
    app.include_router(recommendations.router(ingress))
    app.include_router(features.router(ingress))
    app.include_router(models.router(ingress))
    app.include_router(visualize.router(ingress))
    app.include_router(strategies.router(ingress))
    return app


async def _warm(states: FeatureStates, sport: str) -> None:
    """Read (or fold) a sport's feature state off the request path when a replica starts."""
    try:
        await asyncio.to_thread(states.current, sport)
    except Exception:
        logger.exception("could not read the %s feature state at start", sport)


#: How often the ingress asks the model deployments which versions they serve.
VERSION_POLL_S = 1.0


async def _poll_versions(service: PredictionService) -> None:
    """Keep the model epoch current, so a promotion retires cached answers within a poll."""
    while True:
        await service.poll_model_versions()
        await asyncio.sleep(VERSION_POLL_S)
