"""The feedback loop inside the application: check the retraining triggers, submit the job.

Each ingress replica checks :func:`cluster.retraining.decide` after every newly stored backtest
(``SubmitBacktestFeedback``, ``POST /api/v1/backtest-results``) and every ``check_interval_s``
(the time and drift triggers). A due retraining is submitted with a submission id naming its
trigger and window, so when several replicas see it, the cluster runs it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Engine

from betting.store import session_scope
from cluster import jobs
from cluster.retraining import (
    Decision,
    LoopState,
    RetrainPolicy,
    decide,
    loop_state,
    stored_feedback_runs,
    submit_retraining,
)
from serve.monitoring import LiveScores
from serve.training_jobs import TrainingJobs

logger = logging.getLogger(__name__)


class FeedbackLoop:
    """Checks the policy and submits retraining jobs.

    Args:
        policy: the application's retraining policy.
        engine: the store (called off the event loop).
        training: the application's training jobs (the Jobs API address and the job env).
        live: the live scores (the drift trigger).
    """

    def __init__(
        self,
        policy: RetrainPolicy,
        engine: Callable[[], Engine],
        training: TrainingJobs,
        live: LiveScores,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.training = training
        self.live = live
        self.last_decision: Decision | None = None
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task[Decision | None] | None = None
        self._last_error: str | None = None

    def state(self) -> LoopState:
        """The triggers' inputs now (store, Jobs API and registry reads: call it in a thread)."""
        with session_scope(self.engine()) as session:
            runs = stored_feedback_runs(session)
        return loop_state(
            self.policy, feedback_runs=runs,
            records=jobs.list_jobs(address=self.training.address()),
            client=self.training.mlflow(), scores=self.live.table,
        )  # fmt: skip

    async def check(self) -> Decision | None:
        """Decide, and submit the retraining when one is due; the decision taken."""
        if not self.policy.enabled:
            return None
        async with self._lock:
            try:
                state = await asyncio.to_thread(self.state)
                decision = decide(self.policy, state)
                if decision.due:
                    record = await asyncio.to_thread(
                        submit_retraining, self.policy, decision, state,
                        address=self.training.address(), env_vars=self.training.job_env(),
                    )  # fmt: skip
                    if record is not None:
                        self.training.counted(self.policy.training.family, "submitted")
            except Exception as e:  # noqa: BLE001 - the loop never fails a request
                if str(e) != self._last_error:  # once per distinct reason, not every minute
                    logger.warning("retraining check failed: %s", e)
                self._last_error = str(e)
                return None
            self._last_error = None
            self.last_decision = decision
            return decision

    def after_feedback(self) -> None:
        """A backtest was stored: check soon, in the background (one check at a time)."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self.check())

    async def run(self) -> None:
        """Check every ``check_interval_s`` (the time and drift triggers)."""
        while True:
            await asyncio.sleep(self.policy.check_interval_s)
            await self.check()
