"""The feedback loop: when backtest feedback or live scores call for a new model, retrain.

A :class:`RetrainPolicy` (``args.retraining`` of the Serve config, read by ``betml feedback``
too) says what to run (a :class:`TrainingRequest`: ``betml sweep|train <family> --config ...
--promote``) and when, by any of three triggers:

- ``every_feedback``: that many backtest runs stored since the last retraining;
- ``every_hours``: that long since the last retraining;
- ``max_log_loss_increase``: the watched model's live log loss (its settled predictions,
  :func:`betting.monitoring.live_scores`, over at least ``min_settled_markets`` markets) above
  its champion's holdout log loss by more than this (drift).

:func:`decide` is pure. A due retraining is submitted as a Ray job whose submission id names
the trigger and its window (``betml-retrain-feedback-3``: the third block of ``every_feedback``
runs), so replicas that see the same trigger submit it once: the cluster refuses an id it
already has. The job trains a challenger on the store as it is then (every settled event,
the new ones included) and runs the promotion gate (re-scoring the champion on the new
holdout), and the serving replicas pick a promoted champion up without dropping requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from betting.errors import BetmlError
from betting.schema import BacktestRun
from cluster import jobs, tracking

logger = logging.getLogger(__name__)

#: Metadata key saying why betml submitted a job; training routes list ``training`` and
#: ``retraining`` jobs.
PURPOSE_KEY = "betml.purpose"
PURPOSE_TRAINING = "training"
PURPOSE_RETRAINING = "retraining"
FEEDBACK_COUNT_KEY = "betml.feedback_runs"
TRIGGER_KEY = "betml.trigger"


class TrainingRequest(BaseModel):
    """What to train: ``betml <mode> <family> --config <config> [--trials N] [--promote]``."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["ensemble", "classifier", "dqn"]
    mode: Literal["sweep", "train"] = "sweep"
    config: str = Field(
        description="A config file of the repository, e.g. configs/sweeps/lightgbm.yaml."
    )
    trials: int | None = Field(None, ge=1, le=1000, description="Sweeps only: trials to run.")
    promote: bool = Field(False, description="Run the promotion gate on the new challenger.")

    @field_validator("config")
    @classmethod
    def _inside_configs(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or path.parts[:1] != ("configs",):
            raise ValueError(f"must be a path under configs/, got {value!r}")
        if path.suffix not in (".yaml", ".yml"):
            raise ValueError(f"must be a YAML file, got {value!r}")
        return value

    @model_validator(mode="after")
    def _trials_for_sweeps(self) -> TrainingRequest:
        if self.trials is not None and self.mode != "sweep":
            raise ValueError("trials is for sweeps; leave it unset with mode 'train'")
        return self

    def command(self) -> list[str]:
        """The betml command the job runs."""
        args = [self.mode, self.family, "--config", self.config]
        if self.trials is not None:
            args += ["--trials", str(self.trials)]
        return args + (["--promote"] if self.promote else [])


class RetrainPolicy(BaseModel):
    """When the feedback loop retrains, and what it runs."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Off: feedback is stored, nothing is retrained automatically (``betml feedback retrain``
    still works)."""
    training: TrainingRequest = Field(
        default_factory=lambda: TrainingRequest(
            family="ensemble", config="configs/sweeps/lightgbm.yaml", promote=True
        )
    )
    """The retraining job (``promote`` should stay on: the loop ends at the promotion gate)."""
    model: str | None = None
    """Registered model whose live log loss is watched for drift (e.g.
    ``betml-lightgbm-football-1x2``); none: no drift trigger."""
    every_feedback: int | None = Field(20, ge=1)
    """Retrain after this many backtest runs stored since the last retraining (none: off)."""
    every_hours: float | None = Field(None, gt=0)
    """Retrain when the last retraining is this old (none: off)."""
    max_log_loss_increase: float | None = Field(0.02, gt=0)
    """Retrain when the watched model's live log loss exceeds its holdout log loss by more."""
    min_settled_markets: int = Field(100, ge=1)
    """Settled markets the live log loss needs before it can trigger."""
    check_interval_s: float = Field(60.0, gt=0)
    """How often a serving replica checks the time and drift triggers."""


@dataclass(frozen=True)
class LastRetraining:
    """The latest retraining job."""

    job_id: str
    submitted_at: datetime | None
    feedback_runs: int
    """Backtest runs stored when it was submitted."""
    status: str


@dataclass(frozen=True)
class LoopState:
    """What the triggers look at."""

    now: datetime
    feedback_runs: int
    last: LastRetraining | None = None
    live_log_loss: float | None = None
    live_markets: int = 0
    holdout_log_loss: float | None = None


@dataclass(frozen=True)
class Decision:
    """Whether to retrain, why, and the job id that makes the decision happen once."""

    due: bool
    reason: str
    trigger: str | None = None
    submission_id: str | None = None


def decide(policy: RetrainPolicy, state: LoopState) -> Decision:
    """Which trigger (if any) calls for a retraining now (feedback, then time, then drift)."""
    if not policy.enabled:
        return Decision(False, "the retraining policy is disabled")
    last = state.last
    if last is not None and last.status not in jobs.TERMINAL_STATES:
        return Decision(False, f"retraining job {last.job_id} is still {last.status}")
    if policy.every_feedback:
        since = state.feedback_runs - (last.feedback_runs if last else 0)
        if since >= policy.every_feedback:
            window = state.feedback_runs // policy.every_feedback
            return Decision(
                True, f"{since} backtest run(s) stored since the last retraining "
                f"(every_feedback {policy.every_feedback})",
                "feedback", f"betml-retrain-feedback-{window}",
            )  # fmt: skip
    if policy.every_hours and last is not None and last.submitted_at is not None:
        hours = (state.now - last.submitted_at).total_seconds() / 3600
        if hours >= policy.every_hours:
            window = int(state.now.timestamp() // (policy.every_hours * 3600))
            return Decision(
                True, f"the last retraining is {hours:.1f} h old (every_hours "
                f"{policy.every_hours})", "schedule", f"betml-retrain-schedule-{window}",
            )  # fmt: skip
    if (
        policy.max_log_loss_increase
        and state.live_log_loss is not None
        and state.holdout_log_loss is not None
        and state.live_markets >= policy.min_settled_markets
    ):
        increase = state.live_log_loss - state.holdout_log_loss
        if increase > policy.max_log_loss_increase:
            return Decision(
                True, f"live log loss {state.live_log_loss:.4f} over {state.live_markets} "
                f"settled markets is {increase:.4f} above the holdout's "
                f"{state.holdout_log_loss:.4f} (max_log_loss_increase "
                f"{policy.max_log_loss_increase})",
                "drift", f"betml-retrain-drift-{state.now:%Y%m%d%H}",
            )  # fmt: skip
    return Decision(False, "no trigger is due")


def stored_feedback_runs(session: Session) -> int:
    """Backtest runs in the store."""
    return int(session.scalar(select(func.count()).select_from(BacktestRun)) or 0)


def last_retraining(records: list[jobs.JobRecord]) -> LastRetraining | None:
    """The newest retraining job among ``records``."""
    ours = [r for r in records if r.metadata.get(PURPOSE_KEY) == PURPOSE_RETRAINING]
    if not ours:
        return None
    newest = max(ours, key=lambda r: r.start_time or datetime.min.replace(tzinfo=UTC))
    return LastRetraining(
        job_id=newest.submission_id,
        submitted_at=newest.start_time,
        feedback_runs=int(newest.metadata.get(FEEDBACK_COUNT_KEY, "0") or 0),
        status=newest.status,
    )


def watched_holdout(client: Any, model: str | None) -> tuple[float | None, int | None]:
    """(holdout log loss, version) of the version ``model`` names (``name`` is its champion);
    (None, None) when there is no such model or it has no log-loss score."""
    if model is None:
        return None, None
    try:
        name, version = tracking.resolve(model, client=client)
    except BetmlError:
        return None, None
    raw = client.get_model_version(name, str(version)).tags.get(tracking.TAG_HOLDOUT_LOG_LOSS)
    return (float(raw) if raw else None), version


def live_drift(
    scores: pd.DataFrame | None, model: str | None, version: int | None
) -> tuple[float | None, int]:
    """(live log loss, settled markets) of ``model`` version ``version`` in a live-scores table
    (:func:`betting.monitoring.live_scores`)."""
    if model is None or version is None or scores is None or scores.empty:
        return None, 0
    rows = scores[(scores["model_name"] == model) & (scores["model_version"] == str(version))]
    if rows.empty:
        return None, 0
    value = float(rows["log_loss"].iloc[0])
    return (value if math.isfinite(value) else None), int(rows["markets"].iloc[0])


def loop_state(
    policy: RetrainPolicy,
    *,
    feedback_runs: int,
    records: list[jobs.JobRecord],
    client: Any,
    scores: pd.DataFrame | None,
) -> LoopState:
    """The triggers' inputs from what was read: the stored backtest runs, the cluster's jobs, the
    registry (``client``) and the live scores."""
    holdout, version = watched_holdout(client, policy.model)
    live, markets = live_drift(scores, policy.model, version)
    return LoopState(
        now=datetime.now(UTC), feedback_runs=feedback_runs, last=last_retraining(records),
        live_log_loss=live, live_markets=markets, holdout_log_loss=holdout,
    )  # fmt: skip


def submit_retraining(
    policy: RetrainPolicy,
    decision: Decision,
    state: LoopState,
    *,
    address: str | None = None,
    env_vars: Mapping[str, str] | None = None,
) -> jobs.JobRecord | None:
    """Submit the retraining job of a due decision; None when another replica already did."""
    metadata = {
        PURPOSE_KEY: PURPOSE_RETRAINING,
        "betml.family": policy.training.family,
        TRIGGER_KEY: decision.trigger or "manual",
        FEEDBACK_COUNT_KEY: str(state.feedback_runs),
        "betml.reason": decision.reason[:500],
    }
    try:
        record = jobs.submit(
            policy.training.command(), address=address, submission_id=decision.submission_id,
            metadata=metadata, env_vars=env_vars,
        )  # fmt: skip
    except jobs.JobsApiError as e:
        if decision.submission_id and "already" in str(e).lower():
            logger.info("retraining %s was already submitted", decision.submission_id)
            return None
        raise
    logger.info("retraining job %s submitted: %s", record.submission_id, decision.reason)
    return record
