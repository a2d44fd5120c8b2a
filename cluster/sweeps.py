"""Hyperparameter sweeps of an outcome-model family, judged by walk-forward validation.

A sweep config (``configs/sweeps/*.yaml``, :class:`SweepConfig`) names a family, the data, the
fixed parameters and a search space over dotted parameter paths. Each trial fits the family on
the training seasons' walk-forward folds (every fold trains on what came before it and is scored
on the window after) and reports the running mean of the folds' validation log loss after each
fold, so ASHA can stop a poor configuration after its first fold. The holdout seasons are never
seen by a trial. The best configuration is then refitted on all training seasons by the shared
training pipeline (:func:`cluster.training.train_and_log`), judged on the holdout next to the
market and the truth, logged and registered as the challenger.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import tune
from ray.tune import Callback, Checkpoint, ResultGrid

from betting.errors import ConfigError, InvalidInput
from betting.evaluation import log_loss, market_ids_of
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION
from betting.splits import walk_forward_splits
from cluster import tracking
from cluster.artifacts import ArtifactMeta
from cluster.configs import FAMILIES, TrainConfig, family_functions
from cluster.training import (
    TrainResult,
    load_table,
    market_slug,
    split_holdout,
    train_and_log,
)
from cluster.tuning import SweepSettings, run_sweep

logger = logging.getLogger(__name__)

METRIC = "valid/log_loss"
"""Mean validation log loss over the folds a trial has finished (lower is better)."""
METRIC_FOLD = "valid/fold_log_loss"
METRIC_FOLDS_DONE = "valid/folds"
#: Written into each trial's checkpoint: the folds' log losses so far.
FOLD_SCORES_FILE = "fold_scores.json"


class Distribution(BaseModel):
    """One searched hyperparameter.

    ``uniform``/``loguniform`` draw floats in ``[low, high]``, ``int``/``logint`` integers in
    ``[low, high]`` (both ends included), ``choice`` one of ``values``.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["uniform", "loguniform", "int", "logint", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.type == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError("choice takes a non-empty `values` list and no low/high")
            return self
        if self.low is None or self.high is None or self.values is not None:
            raise ValueError(f"{self.type} takes `low` and `high` and no values")
        if not self.low < self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        if self.type.startswith("log") and self.low <= 0:
            raise ValueError(f"{self.type} needs a positive low, got {self.low}")
        if self.type in ("int", "logint") and not (
            float(self.low).is_integer() and float(self.high).is_integer()
        ):
            raise ValueError(f"{self.type} bounds must be whole numbers")
        return self

    def to_tune(self) -> Any:
        """The ``ray.tune`` sampling function of this distribution."""
        low, high = self.low, self.high
        if self.type == "choice":
            return tune.choice(list(self.values or []))
        assert low is not None and high is not None
        if self.type == "uniform":
            return tune.uniform(low, high)
        if self.type == "loguniform":
            return tune.loguniform(low, high)
        if self.type == "int":
            return tune.randint(int(low), int(high) + 1)  # randint excludes its upper bound
        return tune.lograndint(int(low), int(high) + 1)


class SweepConfig(TrainConfig):
    """``configs/sweeps/*.yaml``: a train config whose ``params`` are the fixed hyperparameters,
    plus a search over others. The holdout seasons are never seen by a trial; the refitted best
    is registered as the challenger unless ``register_model`` is false."""

    space: dict[str, Distribution]
    """Searched hyperparameters by dotted path into ``params``, e.g.
    ``member_params.lightgbm.num_leaves``."""
    folds: int = Field(3, ge=1, le=20)
    """Walk-forward validation folds inside the training seasons."""
    trials: int = Field(20, ge=1)
    """Configurations to try (``--trials`` overrides)."""
    max_concurrent: int | None = Field(None, ge=1)
    """Trials at once; default: as many as the cluster has CPUs for."""
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs reserved for each trial (and threads given to the tree models)."""
    max_failures: int = Field(2, ge=0)
    """Times a crashed trial is retried from its last finished fold."""
    sweep_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Folder of the sweep under ``<storage root>/tune`` (``--resume`` finds it by this name);
    default ``<family name>-<sport>-<market>``."""

    @model_validator(mode="after")
    def _space_paths_are_free(self) -> Self:
        if "workers" in self.space or int(self.params.get("workers", 1)) > 1:
            # A trial holds its CPUs; Ray Train workers inside it would wait for CPUs forever.
            raise ValueError("a sweep trains in one process per trial: leave `workers` at 1")
        if not self.space:
            raise ValueError("space is empty: a sweep needs at least one searched parameter")
        for path in self.space:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"space key {path!r} is not a dotted parameter path")
            try:
                _get(self.params, path)
            except KeyError:
                continue
            raise ValueError(f"{path} is both fixed in params and searched in space")
        return self

    def resolved_sweep_name(self) -> str:
        if self.sweep_name:
            return self.sweep_name
        parts = (self.registered_family(), self.data.sport, market_slug(self.data.market))
        return "-".join(parts)


# --- parameters ---------------------------------------------------------------------------


def _get(params: Mapping[str, Any], path: str) -> Any:
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def apply_overrides(params: Mapping[str, Any], flat: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``params`` with each dotted path in ``flat`` set to its value."""
    out: dict[str, Any] = json.loads(json.dumps(dict(params)))
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: {part} is a value, not a group of parameters")
            node = child
        node[leaf] = value.item() if isinstance(value, np.generic) else value
    return out


def trial_params(config: SweepConfig, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The family parameters of one trial: the fixed ones with the sampled ones set."""
    params = apply_overrides(config.params, {k: sampled[k] for k in config.space})
    if config.family == "ensemble":
        params.setdefault("threads", max(1, int(config.cpus_per_trial)))
    return params


# --- the trial ----------------------------------------------------------------------------


def validation_folds(train: pd.DataFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Walk-forward (train rows, validation rows) of the training seasons, events kept whole."""
    splits = walk_forward_splits(train["starts_at"], n_splits=folds, groups=train["event_key"])
    return [(s.train, s.test) for s in splits]


def fold_log_loss(
    config: SweepConfig, params: dict[str, Any], train: pd.DataFrame, valid: pd.DataFrame
) -> float:
    """Fit the sweep's family with ``params`` on ``train``; its log loss on ``valid``."""
    fit, predictor_path = family_functions(config.family)
    meta = ArtifactMeta(
        family=config.registered_family(), predictor=predictor_path, sport=config.data.sport,
        market=config.data.market, feature_columns=list(FEATURE_COLUMNS),
        feature_schema_version=FEATURE_SCHEMA_VERSION,
    )  # fmt: skip
    predictor = fit(train, params, meta, config.seed)
    p = predictor.predict_proba(valid)
    return log_loss(p, valid["won"].to_numpy(dtype=float), market_ids_of(valid))


def sweep_trial(sampled: dict[str, Any], *, table: pd.DataFrame, config_json: str) -> None:
    """One Tune trial: walk-forward folds of the training seasons, a report after each.

    A retried trial (after a crash) starts after the last fold its checkpoint recorded.
    """
    config = SweepConfig.model_validate_json(config_json)
    params = trial_params(config, sampled)
    scores: list[float] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            scores = json.loads((Path(folder) / FOLD_SCORES_FILE).read_text())
    for k, (train_rows, valid_rows) in enumerate(validation_folds(table, config.folds)):
        if k < len(scores):
            continue
        train, valid = table.iloc[train_rows], table.iloc[valid_rows]
        started = time.perf_counter()
        scores.append(fold_log_loss(config, params, train, valid))
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / FOLD_SCORES_FILE).write_text(json.dumps(scores))
            tune.report(
                {
                    METRIC: float(np.mean(scores)),
                    METRIC_FOLD: scores[-1],
                    METRIC_FOLDS_DONE: len(scores),
                    "fold_seconds": time.perf_counter() - started,
                },
                checkpoint=Checkpoint.from_directory(folder),
            )


# --- the sweep ----------------------------------------------------------------------------


class SweepOutcome(BaseModel):
    """What a sweep found and what the refitted best model scored."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    sweep_name: str
    trials: int
    completed: int
    stopped_early: int
    errored: int
    best_params: dict[str, Any]
    best_valid_log_loss: float
    trial_table: list[dict[str, Any]]
    seconds: float
    result: TrainResult | None = None


def summarise(results: ResultGrid, config: SweepConfig) -> tuple[dict[str, Any], list[dict]]:
    """The best sampled configuration (among trials that finished every fold when there are
    any) and one row per trial."""
    rows: list[dict[str, Any]] = []
    for r in results:
        metrics = r.metrics or {}
        rows.append(
            {
                "trial_id": metrics.get("trial_id"),
                **{k: r.config.get(k) for k in config.space},
                METRIC: metrics.get(METRIC),
                METRIC_FOLDS_DONE: metrics.get(METRIC_FOLDS_DONE, 0),
                "error": str(r.error)[:200] if r.error else None,
            }
        )
    scored = [row for row in rows if row[METRIC] is not None and np.isfinite(row[METRIC])]
    if not scored:
        errors = "; ".join(sorted({row["error"] for row in rows if row["error"]}))[:500]
        raise InvalidInput(f"no trial of the sweep finished a fold: {errors or 'no results'}")
    complete = [row for row in scored if row[METRIC_FOLDS_DONE] >= config.folds] or scored
    best = min(complete, key=lambda row: row[METRIC])
    return best, rows


def run(
    config: SweepConfig,
    *,
    trials: int | None = None,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    verbose: int | None = None,
    table: pd.DataFrame | None = None,
    storage_path: Path | None = None,
) -> SweepOutcome:
    """Run (or resume) the sweep, then refit, judge, log and register its best configuration.

    Ray must be connected (``cluster.ray_runtime.connect``). ``trials`` overrides
    ``config.trials``; a resumed sweep keeps the settings it started with.
    """
    if config.family not in FAMILIES:
        raise ConfigError(f"unknown family {config.family!r}")
    started = time.perf_counter()
    table = load_table(config.data) if table is None else table
    train, _ = split_holdout(table, config.data.holdout_seasons)
    validation_folds(train, config.folds)  # fail here, not in every trial, when too few
    name = config.resolved_sweep_name()
    settings = SweepSettings(
        name=name, metric=METRIC, mode="min", num_samples=trials or config.trials,
        cpus_per_trial=config.cpus_per_trial, max_concurrent=config.max_concurrent,
        grace_period=1, max_t=config.folds, seed=config.seed, max_failures=config.max_failures,
    )  # fmt: skip
    trainable = tune.with_parameters(sweep_trial, table=train, config_json=config.model_dump_json())
    family = config.registered_family()
    tags = {
        tracking.TAG_FAMILY: family,
        tracking.TAG_SPORT: config.data.sport,
        tracking.TAG_MARKET: market_slug(config.data.market),
        tracking.TAG_FEATURE_VERSION: FEATURE_SCHEMA_VERSION,
    }
    space = {path: dist.to_tune() for path, dist in config.space.items()}
    results = run_sweep(
        trainable, space, settings, resume=resume, callbacks=callbacks, tags=tags,
        verbose=verbose, storage_path=storage_path,
    )  # fmt: skip
    best, rows = summarise(results, config)
    sweep_seconds = time.perf_counter() - started
    sampled = {k: best[k] for k in config.space}
    outcome = SweepOutcome(
        sweep_name=name, trials=len(rows),
        completed=sum(r[METRIC_FOLDS_DONE] >= config.folds for r in rows),
        stopped_early=sum(0 < r[METRIC_FOLDS_DONE] < config.folds and not r["error"]
                          for r in rows),
        errored=sum(bool(r["error"]) for r in rows), best_params=sampled,
        best_valid_log_loss=float(best[METRIC]), trial_table=rows, seconds=sweep_seconds,
    )  # fmt: skip
    search = {
        "search": {"algorithm": "optuna", "scheduler": "asha", "sweep": name,
                   "metric": METRIC, "folds": config.folds, "space": {
                       k: v.model_dump(exclude_none=True) for k, v in config.space.items()}},
        "trials": {"total": outcome.trials, "completed": outcome.completed,
                   "stopped_early": outcome.stopped_early, "errored": outcome.errored},
        "best_params": sampled, "best_valid_log_loss": outcome.best_valid_log_loss,
        "sweep_seconds": round(sweep_seconds, 3),
    }  # fmt: skip
    fit, predictor_path = family_functions(config.family)
    outcome.result = train_and_log(
        family, fit, trial_params(config, sampled), config.data, predictor_path=predictor_path,
        seed=config.seed, table=table, register=config.register_model, extra_summary=search,
    )  # fmt: skip
    logger.info(
        "sweep %s: best valid log loss %.4f of %d trials; holdout %.4f",
        name, outcome.best_valid_log_loss, outcome.trials, outcome.result.holdout_log_loss,
    )  # fmt: skip
    return outcome
