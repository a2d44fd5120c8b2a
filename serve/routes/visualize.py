"""Charts of training and models: ``/api/v1/visualize/...`` as PNG, or the data behind them
with ``?format=json``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Response
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from betting.errors import NotFound
from cluster import tracking
from cluster.importance import IMPORTANCE_ARTIFACT
from serve import plots
from serve.errors import ResourceNotFound
from serve.routes.common import ApiKeyHeader, answer
from serve.strategies import scored_json

if TYPE_CHECKING:
    from serve.ingress import Ingress

Format = Literal["png", "json"]
_NOT_THERE = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def _missing(kind: str, name: str, error: MlflowException) -> ResourceNotFound:
    return ResourceNotFound(kind, name, f"no {kind} {name!r} in the tracking store ({error})")


def training_progress(client: MlflowClient, run_id: str, metric: str | None) -> dict[str, Any]:
    """A run's metric histories and, when it is a sweep's trial, every trial of that sweep."""
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        if e.error_code in _NOT_THERE:
            raise _missing("run", run_id, e) from e
        raise
    metrics = {
        key: [{"step": m.step, "value": m.value}
              for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]
        for key in sorted(run.data.metrics)
    }  # fmt: skip
    body: dict[str, Any] = {
        "run_id": run_id, "run_name": run.info.run_name, "status": run.info.status,
        "metrics": metrics, "sweep": run.data.tags.get(tracking.TAG_SWEEP),
        "metric": None, "trials": [], "best_so_far": [],
    }  # fmt: skip
    if body["sweep"]:
        stepped = [k for k, v in metrics.items() if len(v) > 1] or list(metrics)
        chosen = metric or (stepped[0] if stepped else None)
        runs = client.search_runs(
            [run.info.experiment_id],
            filter_string=f"tags.`{tracking.TAG_SWEEP}` = '{body['sweep']}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
        )
        trials = [{"run_id": r.info.run_id, "run_name": r.info.run_name,
                   "status": r.info.status, "score": r.data.metrics.get(chosen or "")}
                  for r in runs]  # fmt: skip
        best, best_so_far = float("inf"), []
        for trial in trials:
            if trial["score"] is not None:
                best = min(best, trial["score"])
                best_so_far.append(best)
        body.update(metric=chosen, trials=trials, best_so_far=best_so_far)
    return body


def feature_importance(client: MlflowClient, model: str, top: int) -> dict[str, Any]:
    """The permutation importances logged with the version ``model`` (``name[@alias]``) names."""
    name, version = tracking.resolve(model, client=client)
    run_id = client.get_model_version(name, str(version)).run_id
    try:
        path = client.download_artifacts(run_id, IMPORTANCE_ARTIFACT)
    except (MlflowException, OSError) as e:
        raise NotFound(
            f"{name} version {version} has no {IMPORTANCE_ARTIFACT}: it was trained before "
            "betml logged feature importances; train it again to get them"
        ) from e
    table = json.loads(Path(path).read_text())
    columns = zip(table["feature"], table["importance"], table["std"], strict=True)
    rows = [{"feature": f, "importance": i, "std": s} for f, i, s in columns]
    return {"model_name": name, "version": version, "run_id": run_id, "features": rows[:top]}


def _render(body: dict[str, Any], fmt: Format, draw: Callable[[dict[str, Any]], bytes]) -> Any:
    if fmt == "json":
        return body
    return Response(draw(body), media_type="image/png")


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/visualize", tags=["visualize"])
    client = ingress.mlflow

    @routes.get("/training-progress/{run_id}", response_model=None)
    async def progress(
        run_id: str,
        format: Format = "png",
        metric: str | None = Query(None, description="Trial metric of a sweep's chart."),
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """An MLflow run's metric histories (per fold or iteration); for a sweep's trial also
        every trial's score in start order and the best so far."""

        async def chart() -> Any:
            body = await asyncio.to_thread(training_progress, client(), run_id, metric)
            return await asyncio.to_thread(_render, body, format, plots.training_progress_png)

        return await answer(ingress, chart, x_api_key)

    @routes.get("/feature-importance/{model}", response_model=None)
    async def importance(
        model: str,
        format: Format = "png",
        top: int = Query(20, ge=1, le=200, description="Most important features shown."),
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """Permutation importance of a registered model (``name``, ``name@alias`` or
        ``name/<version>``) on its holdout: the log-loss increase when a feature is shuffled."""

        async def chart() -> Any:
            body = await asyncio.to_thread(feature_importance, client(), model, top)
            return await asyncio.to_thread(_render, body, format, plots.feature_importance_png)

        return await answer(ingress, chart, x_api_key)

    @routes.get("/strategy-ranking", response_model=None)
    async def strategy_ranking(
        format: Format = "png",
        limit: int = Query(20, ge=1, le=200, description="Stored runs ranked (latest first)."),
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """The stored backtests' strategies by EvaluateStrategy's score, best first."""

        async def chart() -> Any:
            runs = await ingress.strategies.performance(None, limit)
            ranked = sorted((scored_json(r) for r in runs), key=lambda r: -r["score"])
            version = ranked[0]["scoring_version"] if ranked else ""
            body = {"scoring_version": version, "strategies": ranked}
            return await asyncio.to_thread(_render, body, format, plots.strategy_ranking_png)

        return await answer(ingress, chart, x_api_key)

    return routes
