"""The serving benchmark's baseline: ``betml.v1.MLService`` on a plain single-process ``grpc.aio``
server, with the model in memory.

How to run (``benchmarks.serve`` starts it; by hand, with the store and MLflow in the environment)::

    python -m benchmarks.serve_plain --model betml-lightgbm-football-1x2 --ready-file ready.json

It answers GetPrediction and BatchPredict with the same :class:`~serve.service.PredictionService`
as the Serve ingress, the same online features (:class:`~serve.online.OnlineFeatures` over the
store) and the same registered model, loaded by the same :class:`~serve.models.RegistryLoader`.
Only the outcome-model deployment's DeploymentHandle is replaced, by :class:`InProcessModel`: the
loaded predictor called in this process, requests that wait together scored in one
``predict_proba`` as ``@serve.batch`` does with ``batch_wait_timeout_s=0``. So the only
difference from the Serve application is Serve itself: its proxy, the hops between processes and
their scheduling. Prediction logging is off here and in the benchmarked application.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pandas as pd
from google.protobuf.message import Message

from cluster.db import get_engine
from cluster.settings import get_settings
from serve.access import API_KEY_METADATA, Access, check_api_key, refusal
from serve.config import ServeArgs
from serve.errors import STATUS_DETAILS_KEY, ResourceNotFound, as_serve_error, status_details
from serve.models import LoadedModel, ModelAnswer, ModelInfo, ModelStatus, RegistryLoader
from serve.online import OnlineFeatures
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc
from serve.service import PredictionService

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)


class _Method:
    """``handle.<method>`` of a DeploymentHandle: ``.remote(...)`` gives an awaitable."""

    def __init__(self, call: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        self._call = call

    def remote(self, *args: Any) -> Coroutine[Any, Any, Any]:
        return self._call(*args)


class _BoundModel:
    """``handle.options(multiplexed_model_id=ref)``: ``.predict.remote(frame)``."""

    def __init__(self, model: InProcessModel, ref: str) -> None:
        self.predict = _Method(lambda frame: model.predict(ref, frame))


class InProcessModel:
    """Stands in for the DeploymentHandle of an outcome-model deployment: the models loaded in
    this process, scored in batches of the requests that wait together.

    Args:
        models: loaded models by multiplexed model id (``name@alias``).
        max_batch_size: most requests scored in one ``predict_proba`` (as ``@serve.batch``).
    """

    def __init__(self, models: dict[str, LoadedModel], max_batch_size: int = 32) -> None:
        self.models = models
        self.max_batch_size = max_batch_size
        self._waiting: dict[str, list[tuple[pd.DataFrame, asyncio.Future[ModelAnswer]]]] = {}
        self.health = _Method(self._health)

    def options(self, *, multiplexed_model_id: str) -> _BoundModel:
        return _BoundModel(self, multiplexed_model_id)

    async def _health(self) -> list[ModelStatus]:
        return [
            ModelStatus(m.name, m.alias, "loaded", version=m.version, loaded_at=m.loaded_at)
            for m in self.models.values()
        ]

    async def predict(self, ref: str, frame: pd.DataFrame) -> ModelAnswer:
        """The answer for ``frame``, scored with the requests that wait beside it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ModelAnswer] = loop.create_future()
        waiting = self._waiting.setdefault(ref, [])
        waiting.append((frame, answer))
        if len(waiting) == 1:  # the first waiter schedules the batch; later ones join it
            loop.call_soon(self._score, ref)
        return await answer

    def _score(self, ref: str) -> None:
        while waiting := self._waiting.get(ref):
            batch, self._waiting[ref] = (
                waiting[: self.max_batch_size],
                waiting[self.max_batch_size :],
            )
            answers = self._answers(ref, [frame for frame, _ in batch])
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    def _answers(self, ref: str, frames: list[pd.DataFrame]) -> list[ModelAnswer]:
        model = self.models.get(ref)
        if model is None:
            missing = ResourceNotFound("model", ref, f"this server does not hold {ref!r}")
            return [ModelAnswer(error=missing) for _ in frames]
        together = frames[0] if len(frames) == 1 else pd.concat(
            [f.assign(event_key=f"{i}\x1f" + f["event_key"].astype(str))
             for i, f in enumerate(frames)], ignore_index=True,
        )  # fmt: skip  # markets of different requests may share keys: each keeps its own
        try:
            p = model.predictor.predict_proba(together)
        except Exception as e:  # noqa: BLE001 - every request of the batch gets the error
            error = as_serve_error(e, field="features")
            return [ModelAnswer(error=error) for _ in frames]
        info = ModelInfo(model.name, model.version, model.alias,
                         model.predictor.meta.feature_schema_version)  # fmt: skip
        sizes = np.cumsum([len(f) for f in frames])[:-1]
        return [ModelAnswer(part, info) for part in np.split(np.asarray(p, float), sizes)]


def load_model(ref: str, folder: Path) -> LoadedModel:
    """``name@alias`` loaded as a model replica loads it."""
    registry = RegistryLoader()
    name, version = registry.resolve(ref)
    predictor = registry.load(name, version, folder / f"v{version}")
    alias = ref.partition("@")[2]
    return LoadedModel(name, version, alias, predictor, datetime.now(UTC), folder)


class PlainServicer(pb_grpc.MLServiceServicer):
    """GetPrediction, BatchPredict and HealthCheck over :class:`PredictionService`, with the
    ingress's API-key check and error statuses."""

    def __init__(self, service: PredictionService) -> None:
        self.service = service
        self.settings = get_settings()

    async def _answer(
        self,
        method: str,
        call: Callable[[], Awaitable[R]],
        empty: type[R],
        context: Any,
        access: Access,
    ) -> R:
        key = dict(context.invocation_metadata()).get(API_KEY_METADATA)
        try:
            check_api_key(key, access=access, settings=self.settings)
            return await call()
        except Exception as e:  # noqa: BLE001 - every failure becomes a status
            error = refusal(e, method, "")
            context.set_code(error.code)
            context.set_details(str(error))
            context.set_trailing_metadata([(STATUS_DETAILS_KEY, status_details(error))])
            return empty()

    async def GetPrediction(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC
        call = lambda: self.service.get_prediction(request)  # noqa: E731
        return await self._answer("GetPrediction", call, pb.GetPredictionResponse, context, "read")

    async def BatchPredict(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC
        call = lambda: self.service.batch_predict(request)  # noqa: E731
        return await self._answer("BatchPredict", call, pb.BatchPredictResponse, context, "read")

    async def HealthCheck(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC
        return await self._answer(
            "HealthCheck", self.service.health_check, pb.HealthCheckResponse, context, "open"
        )


async def serve_plain(args: ServeArgs, ref: str, ready_file: Path) -> None:
    """Serve until cancelled; ``ready_file`` gets ``{"port": ...}`` once the model is loaded."""
    settings = get_settings()
    deployment = args.default_deployment
    with tempfile.TemporaryDirectory(prefix="betml-plain-") as tmp:
        model = load_model(ref, Path(tmp))
        features = OnlineFeatures(lambda: get_engine(settings), ttl_s=args.features.history_ttl_s)
        max_batch = args.models[deployment].max_batch_size
        service = PredictionService(
            args, features, {deployment: InProcessModel({ref: model}, max_batch)}
        )
        server = grpc.aio.server()
        pb_grpc.add_MLServiceServicer_to_server(PlainServicer(service), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready_file.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        logger.warning("plain grpc.aio server on port %d", port)
        await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="name@alias served by default")
    parser.add_argument("--args", default="{}", help="ServeArgs as JSON")
    parser.add_argument("--ready-file", type=Path, required=True)
    parsed = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args = ServeArgs.model_validate(json.loads(parsed.args))
    asyncio.run(serve_plain(args, parsed.model, parsed.ready_file))


if __name__ == "__main__":
    main()
