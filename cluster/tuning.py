"""The one Ray Tune set-up every betml sweep uses.

Optuna proposes configurations (seeded, so a sweep is repeatable), a concurrency limiter keeps as
many trials running as the cluster has room for, ASHA stops the poor ones early, failed trials
are retried, every trial is an MLflow run, and an interrupted sweep resumes where it stopped.

Function trainables take the config dict, report with ``ray.tune.report(metrics,
checkpoint=...)`` and, to resume mid-trial after a failure, start from
``ray.tune.get_checkpoint()`` when it is not None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self

import optuna
import ray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune import Callback, FailureConfig, ResultGrid, RunConfig, TuneConfig, Tuner
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from betting.errors import ConfigError
from cluster.settings import Settings, get_settings
from cluster.tracking import TAG_SWEEP, configure_mlflow, job_tags

logger = logging.getLogger(__name__)


class SweepSettings(BaseModel):
    """How one hyperparameter sweep runs (the search space is passed separately)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """The sweep's folder under the Tune storage path; the same name resumes the same sweep."""

    metric: str
    """The reported metric that ranks trials, e.g. ``valid/log_loss``."""

    mode: Literal["min", "max"] = "min"
    """Whether lower or higher ``metric`` is better."""

    num_samples: int = Field(20, ge=1)
    """How many configurations to try."""

    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs reserved for each trial."""

    max_concurrent: int | None = Field(None, ge=1)
    """Trials running at once; default: the cluster's CPUs / ``cpus_per_trial``."""

    grace_period: int = Field(1, ge=1)
    """ASHA: training iterations every trial runs before it may be stopped."""

    max_t: int = Field(100, ge=1)
    """ASHA: training iterations after which a trial is stopped in any case."""

    reduction_factor: float = Field(3.0, gt=1)
    """ASHA: the fraction ``1/reduction_factor`` of trials goes on at each rung."""

    seed: int = 0
    """Seed of the Optuna sampler."""

    max_failures: int = Field(2, ge=0)
    """Times a failed trial is retried (from its last checkpoint) before it counts as errored."""

    @model_validator(mode="after")
    def _grace_within_max_t(self) -> Self:
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period {self.grace_period} exceeds max_t {self.max_t}")
        return self


def default_max_concurrent(cpus_per_trial: float) -> int:
    """As many trials as the connected cluster's CPUs hold, at least one."""
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // cpus_per_trial))


def run_sweep(
    trainable: Callable[[dict[str, Any]], Any],
    param_space: Mapping[str, Any],
    settings: SweepSettings,
    *,
    storage_path: Path | str | None = None,
    resume: bool = False,
    mlflow: bool = True,
    callbacks: Iterable[Callback] = (),
    tags: Mapping[str, str] | None = None,
    environment: Settings | None = None,
    verbose: int | None = None,
    search: bool = True,
) -> ResultGrid:
    """Run (or resume) a sweep on the connected Ray and return its results.

    Args:
        trainable: a function trainable (config dict in, ``ray.tune.report`` out).
        param_space: the search space, in ``ray.tune`` sampling functions.
        settings: how the sweep runs.
        storage_path: where Tune keeps sweeps (default ``<storage_root>/tune``); the sweep's
            folder is ``<storage_path>/<settings.name>``.
        resume: continue the sweep in that folder when there is one: finished trials are kept,
            unfinished and errored ones run again (from their last checkpoint), the search goes
            on until ``num_samples``. The resumed sweep keeps its original run config, callbacks
            included.
        mlflow: log every trial as an MLflow run in the settings' experiment.
        callbacks: more Tune callbacks.
        tags: MLflow tags for every trial run (e.g. :func:`cluster.tracking.run_tags`).
        environment: betml's settings (default :func:`get_settings`).
        verbose: Tune's own console output (0 silences it, as the CLI does when it draws its
            own trial table; default Tune's).
        search: propose configurations with Optuna and stop poor trials with ASHA. False runs
            ``param_space`` as given, ``num_samples`` times (once, for a plain training run),
            with the same checkpoints, retries, MLflow runs and resume.

    Raises:
        ConfigError: Ray is not connected (entry points call ``cluster.ray_runtime.connect``).
    """
    if not ray.is_initialized():
        raise ConfigError("Ray is not connected: call cluster.ray_runtime.connect() first")
    env = environment or get_settings()
    root = Path(storage_path) if storage_path is not None else env.storage_root / "tune"
    root = root.resolve()
    experiment_dir = root / settings.name
    resourced = tune.with_resources(trainable, {"cpu": settings.cpus_per_trial})
    if resume and Tuner.can_restore(experiment_dir):
        logger.info("resuming sweep %s from %s", settings.name, experiment_dir)
        tuner = Tuner.restore(
            str(experiment_dir), resourced, resume_errored=True, param_space=dict(param_space)
        )
        return tuner.fit()
    if resume:
        logger.info("no sweep to resume at %s; starting %s", experiment_dir, settings.name)
    run_callbacks = list(callbacks)
    if mlflow:
        run_callbacks.insert(0, _mlflow_callback(env, settings.name, tags))
    tuner = Tuner(
        resourced,
        param_space=dict(param_space),
        tune_config=_tune_config(settings) if search else _plain_tune_config(settings),
        run_config=RunConfig(
            name=settings.name,
            storage_path=str(root),
            failure_config=FailureConfig(max_failures=settings.max_failures),
            callbacks=run_callbacks,
            verbose=verbose,
        ),
    )
    return tuner.fit()


def _tune_config(settings: SweepSettings) -> TuneConfig:
    max_concurrent = settings.max_concurrent or default_max_concurrent(settings.cpus_per_trial)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study created
    searcher = ConcurrencyLimiter(OptunaSearch(seed=settings.seed), max_concurrent=max_concurrent)
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        grace_period=settings.grace_period,
        max_t=settings.max_t,
        reduction_factor=settings.reduction_factor,
    )
    return TuneConfig(
        metric=settings.metric,
        mode=settings.mode,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=settings.num_samples,
        # A trial's worker stays for the next trial: the model libraries are imported once per
        # worker, not once per trial (seconds each on a small machine).
        reuse_actors=True,
    )


def _plain_tune_config(settings: SweepSettings) -> TuneConfig:
    return TuneConfig(
        metric=settings.metric, mode=settings.mode, num_samples=settings.num_samples,
        reuse_actors=True,
    )  # fmt: skip


def _mlflow_callback(
    env: Settings, sweep: str, tags: Mapping[str, str] | None
) -> MLflowLoggerCallback:
    configure_mlflow(env)  # creates the experiment with betml's artifact location
    return MLflowLoggerCallback(
        tracking_uri=env.mlflow_tracking_uri,
        registry_uri=env.mlflow_tracking_uri,
        experiment_name=env.mlflow_experiment_name,
        tags={TAG_SWEEP: sweep, **job_tags(), **(tags or {})},
        save_artifact=False,
    )
