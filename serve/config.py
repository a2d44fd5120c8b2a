"""The typed arguments of betml's Serve application (``args:`` of ``configs/serve/*.yaml``).

Infrastructure (the store, MLflow, the API key) comes from the environment through
:mod:`cluster.settings` on each replica; these arguments say what the application serves and
how. Deployment options Serve itself owns (replicas, autoscaling, ``max_ongoing_requests``,
ports) live in the same YAML file's ``deployments:``, ``http_options`` and ``grpc_options``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cluster.retraining import RetrainPolicy
from cluster.tracking import ALIAS_CHAMPION, MODEL_PREFIX

#: The outcome-model deployments an application may hold, by deployment name.
OUTCOME_DEPLOYMENTS = ("ensemble", "classifier")
#: The strategy agent's deployment name.
AGENT_DEPLOYMENT = "agent"
#: Registered family of the strategy agent's policies (``rl.config.FAMILY``; serving does not
#: import the training side, a unit test checks they agree).
FAMILY_DQN = "dqn"

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class RegistryDeploymentArgs(BaseModel):
    """What every deployment of registered models shares: alias, preloading, polling, batching."""

    model_config = ConfigDict(extra="forbid")

    alias: str = ALIAS_CHAMPION
    """Registry alias served when a request names none."""
    preload: list[str] = Field(default_factory=list)
    """Models (``name`` or ``name@alias``) every replica loads at start, so that readiness and
    the first requests do not wait for a load."""
    poll_interval_s: float = Field(default=5.0, gt=0.0)
    """How often each loaded model's alias is looked up; a new version is loaded beside the old
    one and swapped in when ready."""
    max_batch_size: int = Field(default=32, ge=1)
    """Requests ``@serve.batch`` scores in one vectorised call."""
    batch_wait_timeout_s: float = Field(default=0.0, ge=0.0)
    """How long a batch waits for more requests before it is scored. 0: no waiting; requests
    that arrive while a batch is being scored still form the next batch."""


class ModelDeploymentArgs(RegistryDeploymentArgs):
    """One outcome-model deployment (``ensemble`` or ``classifier``)."""

    families: list[str] = Field(min_length=1)
    """Registered family names it serves (``lightgbm``, ``stacked``, ``keras``...): a request for
    ``betml-<family>-...`` goes to the deployment listing that family. The first family makes
    the default model of a sport and market, ``betml-<families[0]>-<sport>-<market>``."""

    @field_validator("families")
    @classmethod
    def _words(cls, families: list[str]) -> list[str]:
        bad = [f for f in families if not _WORD.fullmatch(f)]
        if bad:
            raise ValueError(f"families must be lowercase words joined by '-', got {bad}")
        return families


class AgentDeploymentArgs(RegistryDeploymentArgs):
    """The strategy-agent deployment (``agent``): registered DQN policies, loaded on first use.

    A market of sport ``s`` and market key ``m`` is staked by ``betml-<family>-<s>-<slug of m>``
    at ``alias`` (``betml-dqn-football-1x2@champion``); none is needed for the application to
    start or be healthy: a request asking for an unregistered agent is answered NOT_FOUND."""

    family: str = Field(default=FAMILY_DQN, pattern=_WORD.pattern)
    """Registered family name of the agent's policies."""


def _default_models() -> dict[str, ModelDeploymentArgs]:
    return {
        "ensemble": ModelDeploymentArgs(
            families=["lightgbm", "stacked", "xgboost", "random-forest", "gradient-boosting"]
        ),
    }


class FeatureArgs(BaseModel):
    """Online features: the kept feature state (``BETML_FEATURE_STORE_URL`` says where)."""

    model_config = ConfigDict(extra="forbid")

    warm_sports: list[str] = Field(default_factory=lambda: ["football"])
    """Sports whose feature state each ingress replica reads (or folds) when it starts, so the
    first request does not wait for it; other sports are read on first use."""

    event_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    """Stored events whose feature rows an ingress replica keeps (least recently used go)."""

    answer_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    """GetPrediction answers an ingress replica keeps, keyed by request, feature state version
    and model epoch (0 turns the cache off)."""


class PredictionLogArgs(BaseModel):
    """Logging answered predictions to the store's ``predictions`` table (for live scores)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Log every answered market; off: answers carry an empty ``prediction_id``."""
    flush_interval_s: float = Field(default=1.0, gt=0.0)
    """Longest time a logged row waits in the replica's buffer before it is written."""
    flush_rows: int = Field(default=500, ge=1)
    """Rows that start a write at once; also the most rows of one insert."""
    max_buffered_rows: int = Field(default=50_000, ge=1)
    """Most rows a replica keeps waiting (while the store is down); rows beyond it are dropped
    and counted (``ml_prediction_log_dropped``)."""


class ServeArgs(BaseModel):
    """Arguments of :func:`serve.app.build_app`."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelDeploymentArgs] = Field(default_factory=_default_models)
    """Outcome-model deployments by name (``ensemble``, ``classifier``): at least one."""
    default_deployment: str = "ensemble"
    """The deployment answering requests that name no model."""
    features: FeatureArgs = Field(default_factory=lambda: FeatureArgs())
    """Online features."""
    agent: AgentDeploymentArgs | None = Field(default_factory=lambda: AgentDeploymentArgs())
    """The strategy-agent deployment (``include_agent_stake``); null: no agent is served and
    requests asking for its stake are answered NOT_FOUND."""
    max_batch_markets: int = Field(default=1000, ge=1)
    """Most markets one BatchPredict may carry."""
    prediction_log: PredictionLogArgs = Field(default_factory=lambda: PredictionLogArgs())
    """Logging of answered predictions."""
    retraining: RetrainPolicy | None = None
    """The feedback loop (:mod:`cluster.retraining`): when stored backtests, time or the live
    log loss call for a retraining job. None: no automatic retraining."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime env of every deployment (e.g. ``env_vars`` with ``DATABASE_URL``); a config
    file may set the application's ``runtime_env`` instead."""

    @model_validator(mode="after")
    def _check(self) -> ServeArgs:
        unknown = sorted(set(self.models) - set(OUTCOME_DEPLOYMENTS))
        if not self.models or unknown:
            raise ValueError(
                f"models must name some of {list(OUTCOME_DEPLOYMENTS)}, got {sorted(self.models)}"
            )
        if self.default_deployment not in self.models:
            raise ValueError(
                f"default_deployment {self.default_deployment!r} is not one of the models "
                f"{sorted(self.models)}"
            )
        seen: dict[str, str] = {}
        for name, deployment in self.models.items():
            for family in deployment.families:
                if family in seen:
                    raise ValueError(f"family {family!r} is served by {seen[family]} and {name}")
                seen[family] = name
        if self.agent is not None and self.agent.family in seen:
            raise ValueError(
                f"agent family {self.agent.family!r} is also served by {seen[self.agent.family]}"
            )
        return self

    def deployment_for_model(self, model_name: str) -> str:
        """The deployment serving registered model ``model_name`` (``betml-<family>-...``): the
        one listing the longest matching family, else the default deployment."""
        best, length = self.default_deployment, 0
        for name, deployment in self.models.items():
            for family in deployment.families:
                prefix = f"{MODEL_PREFIX}-{family}-"
                if model_name.startswith(prefix) and len(prefix) > length:
                    best, length = name, len(prefix)
        return best
