"""The trained agent's own MLflow run: its holdout numbers, the exported policy, the summary,
and its registration as ``betml-dqn-<sport>-<market>`` (alias ``challenger``).

The registry's promotion gate compares lower-is-better holdout scores; the agent registers
:data:`rl.config.REGISTRY_SCORE` (``neg_log_growth``: minus the mean log growth of the bankroll
per holdout season), a named score that is only ever compared with the same score.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import mlflow

from betting.features import FEATURE_SCHEMA_VERSION
from cluster import tracking
from cluster.settings import get_settings
from cluster.training import ARTIFACT_PATH, market_slug
from rl import config as names
from rl.config import AgentConfig
from rl.decisions import DECISION_COLUMNS
from rl.policy import load_policy

if TYPE_CHECKING:
    from rl.train import AgentOutcome, DecisionData

logger = logging.getLogger(__name__)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def log_agent(outcome: AgentOutcome, config: AgentConfig, data: DecisionData) -> None:
    """Log the best trial's policy as its own MLflow run and register it; fills ``outcome``."""
    from rl.train import copy_policy

    settings = get_settings()
    tracking.configure_mlflow(settings)
    sport, market = config.data.sport, market_slug(config.data.market)
    name = tracking.model_name(names.FAMILY, sport, market)
    decisions = [data.train[DECISION_COLUMNS], data.holdout[DECISION_COLUMNS]]
    tags = tracking.run_tags(
        data_hash=tracking.data_hash(_concat(decisions)), feature_version=FEATURE_SCHEMA_VERSION,
        config=config.model_dump(mode="json"), family=names.FAMILY, sport=sport, market=market,
    )  # fmt: skip
    with mlflow.start_run(run_name=f"{name}-train", tags=tags) as run:
        run_id = run.info.run_id
        artifact = copy_policy(outcome.checkpoint, settings.storage_root / "models" / run_id)
        policy = load_policy(artifact)
        trained = policy.meta.config
        outcome.evaluation = dict(policy.meta.metrics)
        mlflow.log_params({k: str(v)[:500] for k, v in _flat(trained).items() if k != "space"})
        mlflow.log_metrics({k: v for k, v in outcome.evaluation.items() if math.isfinite(v)})
        mlflow.log_artifacts(str(artifact), ARTIFACT_PATH)
    outcome.summary = {
        "model": name, "family": names.FAMILY, "run_id": run_id, "sport": sport,
        "market": config.data.market, "run_name": outcome.run_name,
        "observation": policy.observation_names, "stake_ladder": config.env.stake_ladder,
        "samples": {
            "train_seasons": sorted(data.train["season"].astype(str).unique()),
            "holdout_seasons": sorted(data.holdout["season"].astype(str).unique()),
            "train_markets": _markets(data.train), "holdout_markets": _markets(data.holdout),
        },
        "dqn": trained.get("dqn"), "best_params": outcome.best_params,
        "holdout": outcome.evaluation, "holdout_id": data.holdout_id,
        "registry_score": {names.REGISTRY_SCORE: _score(outcome.evaluation)},
        "trials": outcome.trials, "env_steps": outcome.env_steps,
        "seconds": round(outcome.seconds, 3),
    }  # fmt: skip
    tracking.log_summary(outcome.summary, run_id, folder=artifact.parent / f"{run_id}-summary")
    outcome.run_id, outcome.model_name, outcome.artifact = run_id, name, artifact
    if config.register_model:
        outcome.version = tracking.register(
            run_id, ARTIFACT_PATH, name, holdout_id=data.holdout_id,
            holdout_score=(names.REGISTRY_SCORE, _score(outcome.evaluation)),
        )  # fmt: skip
    logger.info("trained %s: holdout log growth %.4f", name, -_score(outcome.evaluation))


def _score(evaluation: dict[str, float]) -> float:
    return -float(evaluation[names.EVAL_LOG_GROWTH])


def _markets(frame: Any) -> int:
    return int(frame[["event_key", "market_key"]].drop_duplicates().shape[0])


def _concat(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
