"""Data-parallel fitting of LightGBM and XGBoost members with Ray Train, for tables that outgrow
one worker.

The rows are split among ``workers`` Ray Train workers on the connected Ray, which grow one
booster together (LightGBM's ``data_parallel`` tree learner, XGBoost's collective). Rank 0 reports
the final booster in a checkpoint; it comes back as the same raw-booster member the
single-process fit returns, so artifacts and serving do not depend on how a model was trained.
Hyperparameters map to booster parameters through the same functions as the single-process fit.

Ray Train evens out the workers' shares by dropping up to ``workers - 1`` rows. Runs are kept
under ``<storage_root>/train/<run name>``; on a cluster of several nodes the storage root must be
storage every node reaches (rank 0 writes the checkpoint there, this process reads it back).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from betting.errors import ConfigError
from cluster.settings import get_settings
from ensembles.config import EnsembleParams, LightGBMParams, XGBoostParams, _Params
from ensembles.members import (
    LightGBMMember,
    Member,
    XGBoostMember,
    lightgbm_booster_params,
    xgboost_booster_params,
)

logger = logging.getLogger(__name__)

#: Member kinds that train data-parallel.
DISTRIBUTED_KINDS = ("lightgbm", "xgboost")
#: Name of the Ray Dataset the workers read their rows from, and of its label column.
DATASET = "train"
LABEL = "label"


def check_distributable(config: EnsembleParams) -> None:
    """Refuse an ensemble config whose ``workers`` cannot be honoured, before any work is done.

    Raises:
        ConfigError: ``workers`` > 1 for a kind with no data-parallel fit (the sklearn models,
            a stacked ensemble), or Ray is not connected.
    """
    if config.workers == 1:
        return
    if config.kind not in DISTRIBUTED_KINDS:
        raise ConfigError(
            f"workers={config.workers}: only {' and '.join(DISTRIBUTED_KINDS)} train "
            f"data-parallel with Ray Train, not kind={config.kind!r}; set workers: 1"
        )
    _check_ray()


def _check_ray() -> None:
    if not ray.is_initialized():
        raise ConfigError(
            "Ray is not connected: data-parallel training (workers > 1) needs "
            "cluster.ray_runtime.connect() first"
        )


def fit_member_distributed(
    kind: str, params: _Params, x: np.ndarray, y: np.ndarray, *,
    seed: int, threads: int, workers: int, storage_path: Path | None = None,
) -> Member:  # fmt: skip
    """Fit a LightGBM or XGBoost member on ``workers`` Ray Train workers.

    Args:
        kind: ``lightgbm`` or ``xgboost``.
        params: that kind's hyperparameters.
        x: training rows, missing values already filled in.
        y: binary labels.
        seed: random seed of the booster.
        threads: threads, and CPUs reserved, per worker.
        workers: Ray Train workers.
        storage_path: where Ray Train keeps its runs (default ``<storage_root>/train``).

    Raises:
        ConfigError: Ray is not connected, or ``kind`` has no data-parallel fit.
    """
    _check_ray()
    _warn_if_short_of_cpus(workers, threads)
    import ray.data
    from ray.train import RunConfig, ScalingConfig

    if isinstance(params, LightGBMParams):
        from ray.train.lightgbm import LightGBMTrainer as Trainer

        booster_params, rounds = lightgbm_booster_params(params, seed=seed, threads=threads)
        loop = _lightgbm_worker_loop
    elif isinstance(params, XGBoostParams):
        from ray.train.xgboost import XGBoostTrainer as Trainer  # type: ignore[assignment]

        booster_params, rounds = xgboost_booster_params(params, seed=seed, threads=threads)
        loop = _xgboost_worker_loop
    else:
        raise ConfigError(f"{kind} has no data-parallel fit; only {DISTRIBUTED_KINDS} have one")
    root = storage_path if storage_path is not None else get_settings().storage_root / "train"
    trainer = Trainer(
        loop,
        train_loop_config={"params": booster_params, "rounds": rounds},
        scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": threads}),
        run_config=RunConfig(name=run_name(kind), storage_path=str(Path(root).resolve())),
        datasets={DATASET: ray.data.from_pandas(_rows(x, y))},
    )
    checkpoint = trainer.fit().checkpoint
    if checkpoint is None:
        raise RuntimeError(f"the {kind} Ray Train run reported no checkpoint")
    if isinstance(params, LightGBMParams):
        from ray.train.lightgbm import RayTrainReportCallback as LightGBMReport

        return LightGBMMember(LightGBMReport.get_model(checkpoint))
    from ray.train.xgboost import RayTrainReportCallback as XGBoostReport

    booster = XGBoostReport.get_model(checkpoint)
    booster.set_param({"nthread": threads})
    return XGBoostMember(booster)


def _warn_if_short_of_cpus(workers: int, threads: int) -> None:
    # Ray Train waits for its workers' CPUs without end (an autoscaled cluster may grow to fit).
    have = ray.cluster_resources().get("CPU", 0.0)
    if have < workers * threads:
        logger.warning(
            "workers=%d with threads=%d need %d CPUs but the connected Ray has %g: Ray Train "
            "waits until the cluster has them, forever on a cluster that does not grow",
            workers, threads, workers * threads, have,
        )  # fmt: skip


def run_name(kind: str) -> str:
    """A Ray Train run name unique to one fit: ``<kind>-<UTC time>-<random>``."""
    return f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def _rows(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame[LABEL] = y
    return frame


def _worker_rows() -> tuple[np.ndarray, np.ndarray]:
    """This worker's share of the rows, as the matrix and labels the boosters take."""
    import ray.train

    frame = ray.train.get_dataset_shard(DATASET).materialize().to_pandas()
    return frame.drop(columns=LABEL).to_numpy(dtype=float), frame[LABEL].to_numpy(dtype=int)


def _report_booster(booster: Any, filename: str) -> None:
    """Report the finished booster from rank 0 as the run's one checkpoint, in the file that
    ``RayTrainReportCallback.get_model`` reads.

    Not Ray Train's ``RayTrainReportCallback`` itself: it reports after every boosting round,
    and every report waits for the controller's next poll of the workers (every 2 s by default),
    which would add about 2 s per round.
    """
    import ray.train

    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report({}, checkpoint=None)  # every worker reports as often as rank 0
        return
    with tempfile.TemporaryDirectory() as folder:
        booster.save_model(str(Path(folder) / filename))
        ray.train.report({}, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _lightgbm_worker_loop(config: dict[str, Any]) -> None:
    import lightgbm as lgb
    from ray.train.lightgbm import RayTrainReportCallback, get_network_params

    x, y = _worker_rows()
    params = {**config["params"], "tree_learner": "data_parallel", "pre_partition": True,
              **get_network_params()}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=config["rounds"])
    _report_booster(booster, RayTrainReportCallback.CHECKPOINT_NAME)


def _xgboost_worker_loop(config: dict[str, Any]) -> None:
    import xgboost as xgb
    from ray.train.xgboost import RayTrainReportCallback

    x, y = _worker_rows()
    booster = xgb.train(config["params"], xgb.DMatrix(x, label=y), num_boost_round=config["rounds"])
    _report_booster(booster, RayTrainReportCallback.CHECKPOINT_NAME)
