"""The feedback loop's triggers (pure): feedback count, time, drift, and one job at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cluster.retraining import LastRetraining, LoopState, RetrainPolicy, TrainingRequest, decide

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def policy(**fields: object) -> RetrainPolicy:
    base: dict[str, object] = {"every_feedback": 5, "every_hours": None,
                               "max_log_loss_increase": None}  # fmt: skip
    return RetrainPolicy.model_validate({**base, **fields})


def last(runs: int, status: str = "SUCCEEDED", hours_ago: float = 1.0) -> LastRetraining:
    submitted = NOW - timedelta(hours=hours_ago)
    return LastRetraining("betml-retrain-feedback-1", submitted, runs, status)


def test_feedback_trigger_counts_runs_since_the_last_retraining() -> None:
    assert not decide(policy(), LoopState(NOW, feedback_runs=4)).due
    first = decide(policy(), LoopState(NOW, feedback_runs=5))
    assert first.due and first.trigger == "feedback"
    assert first.submission_id == "betml-retrain-feedback-1"
    assert not decide(policy(), LoopState(NOW, feedback_runs=9, last=last(5))).due
    again = decide(policy(), LoopState(NOW, feedback_runs=11, last=last(5)))
    assert again.due and again.submission_id == "betml-retrain-feedback-2"
    assert "6 backtest run(s)" in again.reason


def test_one_retraining_at_a_time_and_the_switch() -> None:
    running = decide(policy(), LoopState(NOW, feedback_runs=50, last=last(5, "RUNNING")))
    assert not running.due and "still RUNNING" in running.reason
    assert not decide(policy(enabled=False), LoopState(NOW, feedback_runs=50)).due


def test_time_trigger() -> None:
    hourly = policy(every_feedback=None, every_hours=6)
    assert not decide(hourly, LoopState(NOW, 0, last=last(0, hours_ago=5))).due
    due = decide(hourly, LoopState(NOW, 0, last=last(0, hours_ago=7)))
    assert (
        due.due
        and due.trigger == "schedule"
        and due.submission_id.startswith("betml-retrain-schedule-")
    )


def test_drift_trigger_needs_enough_settled_markets() -> None:
    drift = policy(every_feedback=None, max_log_loss_increase=0.02, min_settled_markets=100,
                   model="betml-lightgbm-football-1x2")  # fmt: skip
    state = LoopState(NOW, 0, live_log_loss=1.08, live_markets=99, holdout_log_loss=1.05)
    assert not decide(drift, state).due
    due = decide(drift, LoopState(NOW, 0, live_log_loss=1.08, live_markets=150,
                                  holdout_log_loss=1.05))  # fmt: skip
    assert due.due and due.trigger == "drift" and "0.0300 above" in due.reason
    calm = LoopState(NOW, 0, live_log_loss=1.06, live_markets=150, holdout_log_loss=1.05)
    assert not decide(drift, calm).due


def test_training_request_commands_and_refusals() -> None:
    request = TrainingRequest(family="ensemble", config="configs/sweeps/lightgbm.yaml", trials=4,
                              promote=True)  # fmt: skip
    assert request.command() == ["sweep", "ensemble", "--config", "configs/sweeps/lightgbm.yaml",
                                 "--trials", "4", "--promote"]  # fmt: skip
    good = {"family": "ensemble", "config": "configs/sweeps/lightgbm.yaml"}
    bad_fields: list[dict[str, object]] = [
        {"config": "/etc/passwd.yaml"}, {"config": "configs/../x.yaml"},
        {"config": "configs/sweeps/lightgbm.json"}, {"mode": "train", "trials": 3},
    ]  # fmt: skip
    for bad in bad_fields:
        with pytest.raises(ValidationError):
            TrainingRequest.model_validate({**good, **bad})


def test_start_training_request_from_proto() -> None:
    from serve.errors import BadRequest
    from serve.proto.betml.v1 import ml_service_pb2 as pb
    from serve.training_jobs import training_request

    good = pb.StartTrainingRequest(family="ensemble", config="configs/sweeps/lightgbm.yaml",
                                   trials=3, promote=True)  # fmt: skip
    assert training_request(good).command()[-3:] == ["--trials", "3", "--promote"]
    one = pb.StartTrainingRequest(
        family="classifier", mode="train", config="configs/train/classifier.yaml"
    )
    assert training_request(one).mode == "train"
    with pytest.raises(BadRequest) as caught:
        training_request(pb.StartTrainingRequest(family="boosting", config="/etc/x.yaml"))
    assert {v.field for v in caught.value.violations} == {"family", "config"}
