"""Sweeps on the session's local Ray (2 CPUs): concurrency, MLflow runs, retries, resumption.

Trainables are built by factories so that Ray ships them by value: a trial process then imports
only Ray, not this module and everything it imports.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from pydantic import ValidationError
from ray import tune
from ray.tune import Callback

from cluster.tracking import TAG_SWEEP
from cluster.tuning import SweepSettings, default_max_concurrent, run_sweep

pytestmark = pytest.mark.usefixtures("ray_local")

SPACE = {"x": tune.uniform(0.0, 1.0)}
#: A trial waiting on another gives up after this long; only a broken sweep ever waits that much.
PATIENCE_S = 60.0


def waits_for_a_partner(folder: Path) -> Callable[[dict[str, Any]], None]:
    """A trainable that reports its start and end and does not end before a second trial started."""

    def trainable(config: dict[str, Any]) -> None:
        start = time.time()
        (folder / f"started-{tune.get_context().get_trial_id()}").touch()
        while len(list(folder.glob("started-*"))) < 2 and time.time() < start + PATIENCE_S:
            time.sleep(0.02)
        tune.report({"loss": (config["x"] - 0.3) ** 2, "start": start, "end": time.time()})

    return trainable


def fails_first_attempt(folder: Path) -> Callable[[dict[str, Any]], None]:
    """A trainable whose very first attempt raises; every attempt is logged."""

    def trainable(config: dict[str, Any]) -> None:
        with open(folder / "attempts.log", "a") as log:
            log.write(f"{tune.get_context().get_trial_id()}\n")
        try:
            (folder / "failed-once").touch(exist_ok=False)
        except FileExistsError:
            tune.report({"loss": config["x"]})
            return
        raise RuntimeError("the first attempt fails")

    return trainable


def first_finishes_others_wait(folder: Path) -> Callable[[dict[str, Any]], None]:
    """The first trial to start finishes at once; the others wait for the sweep's interruption."""

    def trainable(config: dict[str, Any]) -> None:
        with open(folder / "starts.log", "a") as log:
            log.write(f"{tune.get_context().get_trial_id()}\n")
        try:
            (folder / "first").touch(exist_ok=False)
        except FileExistsError:
            deadline = time.time() + PATIENCE_S
            while not (folder / "interrupted").exists() and time.time() < deadline:
                time.sleep(0.02)
        tune.report({"loss": config["x"]})

    return trainable


class InterruptOnce(Callback):
    """Stops the sweep as Ctrl+C would, when the first trial completes (once: a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.marker.exists():
            return
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise RuntimeError("Tune's interrupt handler is not installed")
        self.marker.touch()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune saves its state and returns


def starts(folder: Path, log: str) -> Counter[str]:
    return Counter((folder / log).read_text().split())


def test_sweep_settings_validate_and_size_to_the_cluster() -> None:
    assert default_max_concurrent(1.0) == 2
    assert default_max_concurrent(0.5) == 4
    assert default_max_concurrent(4.0) == 1
    with pytest.raises(ValidationError, match="grace_period"):
        SweepSettings(name="s", metric="loss", grace_period=5, max_t=2)
    with pytest.raises(ValidationError):
        SweepSettings(name="../escape", metric="loss")
    with pytest.raises(ValidationError):
        SweepSettings(name="s", metric="loss", mode="lowest")  # type: ignore[arg-type]


def test_trials_run_concurrently_and_each_is_an_mlflow_run(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    settings = SweepSettings(name="concurrent", metric="loss", num_samples=4, max_t=1, seed=3)
    results = run_sweep(
        waits_for_a_partner(tmp_path), SPACE, settings, storage_path=tmp_path / "tune"
    )

    assert results.num_errors == 0 and len(results) == 4
    spans = [(r.metrics["start"], r.metrics["end"]) for r in results]
    assert any(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in itertools.combinations(spans, 2))
    experiment = mlflow_store.get_experiment_by_name("betml-tests")
    assert experiment is not None
    runs = mlflow_store.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags[TAG_SWEEP] for r in runs} == {"concurrent"}
    assert sorted(float(r.data.params["x"]) for r in runs) == pytest.approx(
        sorted(r.config["x"] for r in results)
    )
    assert all("loss" in r.data.metrics for r in runs)


def test_a_failed_trial_is_retried(tmp_path: Path) -> None:
    settings = SweepSettings(name="retry", metric="loss", num_samples=1, max_t=1, max_failures=2)
    results = run_sweep(
        fails_first_attempt(tmp_path), SPACE, settings, storage_path=tmp_path, mlflow=False
    )

    assert results.num_errors == 0
    assert results[0].metrics["loss"] == pytest.approx(results[0].config["x"])
    assert list(starts(tmp_path, "attempts.log").values()) == [2]


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    settings = SweepSettings(name="resumable", metric="loss", num_samples=4, max_t=1, seed=5)
    trainable = first_finishes_others_wait(tmp_path)
    stop = InterruptOnce(tmp_path / "interrupted")
    first = run_sweep(
        trainable, SPACE, settings, storage_path=tmp_path, mlflow=False, callbacks=[stop]
    )
    finished_first = {r.metrics["trial_id"] for r in first if r.metrics.get("done")}
    assert finished_first and len(finished_first) < 4, "the first run stopped early"

    second = run_sweep(trainable, SPACE, settings, storage_path=tmp_path, resume=True)

    assert second.num_errors == 0 and len(second) == 4
    assert {r.metrics["trial_id"] for r in second} >= finished_first
    started = starts(tmp_path, "starts.log")
    assert len(started) == 4, "the search went on to exactly num_samples trials"
    assert all(started[trial_id] == 1 for trial_id in finished_first)
