"""Ray Jobs against a real head (``ray start --head`` with token auth, on free ports): a small
sweep submitted, followed and SUCCEEDED; a long job stopped; a failing job's exit code and last
log lines; a wrong or missing token refused with a clear message."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from betting.errors import ConfigError, NotFound
from betting.simulate import simulate
from betting.store import create_engine_for, migrate, session_scope, write_batch
from cluster import jobs
from cluster.cli import app
from tests.ray_head import RayHead, ray_head

pytestmark = pytest.mark.slow

#: Two tiny LightGBM trials on two folds (as in test_sweeps.py).
TINY_SWEEP = {
    "family": "ensemble",
    "params": {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 15}}},
    "space": {
        "member_params.lightgbm.num_leaves": {"type": "int", "low": 3, "high": 15},
        "member_params.lightgbm.learning_rate": {"type": "loguniform", "low": 0.02, "high": 0.3},
    },
    "folds": 2,
    "trials": 2,
    "seed": 1,
    "sweep_name": "jobs-sweep",
}


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    """A head of its own, with the client side of its token set for the module's tests."""
    with ray_head(num_cpus=2) as started, pytest.MonkeyPatch.context() as mp:
        for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
            mp.delenv(name, raising=False)
        mp.setenv("RAY_AUTH_TOKEN", started.token)
        yield started


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose SQLite store holds three simulated seasons; jobs get it as
    ``BETML_DATA_DIR`` (the head runs on this machine), so MLflow lands there too."""
    path = tmp_path_factory.mktemp("jobs-data")
    engine = create_engine_for(f"sqlite:///{path / 'betml.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, simulate("football", 3, 2, teams=10))
    engine.dispose()
    (path / "sweep.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
    return path


def _wait_until_running(submission_id: str, address: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while (record := jobs.status(submission_id, address=address)).status == jobs.PENDING:
        assert time.monotonic() < deadline, f"{submission_id} still PENDING"
        time.sleep(0.5)
    assert record.status == jobs.RUNNING, record


def test_a_small_sweep_submitted_and_followed_succeeds(head: RayHead, data_dir: Path) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["submit", "--address", head.dashboard_url, "--wait", "--env",
         f"BETML_DATA_DIR={data_dir}", "--", "sweep", "ensemble", "--config",
         str(data_dir / "sweep.yaml"), "--trials", "2"],
    )  # fmt: skip
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert "best so far" in result.output, "the job's log was followed"
    assert "refitted best" in result.output and "SUCCEEDED (exit code 0)" in result.output
    found = re.search(r"submitted (betml-sweep-ensemble-\d{8}-\d{6}-[0-9a-f]{4}):", result.output)
    assert found, result.output
    submission_id = found.group(1)
    record = jobs.status(submission_id, address=head.dashboard_url)
    assert record.succeeded and record.exit_code == 0 and record.log_tail is None
    assert record.metadata["command"].startswith("sweep ensemble --config")
    assert record.metadata["git_commit"] and record.metadata["user"]
    assert record.entrypoint.startswith("python -m cluster.cli sweep ensemble")
    registry = MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    versions = registry.search_model_versions("name='betml-lightgbm-football-1x2'")
    assert len(versions) == 1, "the job registered the refitted best"
    listed = CliRunner().invoke(app, ["jobs", "list", "--address", head.dashboard_url])
    assert listed.exit_code == 0 and "SUCCEEDED" in listed.output, listed.output
    print(f"small sweep: submit to SUCCEEDED in {elapsed:.0f}s")


def test_a_running_job_is_stopped(head: RayHead, data_dir: Path) -> None:
    record = jobs.submit(
        ["sweep", "ensemble", "--config", str(data_dir / "sweep.yaml"), "--trials", "500"],
        address=head.dashboard_url,
        name="long sweep",
        env_vars={"BETML_DATA_DIR": str(data_dir)},
    )
    assert record.submission_id.startswith("betml-long-sweep-")
    _wait_until_running(record.submission_id, head.dashboard_url)

    result = CliRunner().invoke(
        app, ["jobs", "stop", record.submission_id, "--address", head.dashboard_url]
    )

    assert result.exit_code == 0, result.output
    assert "STOPPED" in result.output
    stopped = jobs.status(record.submission_id, address=head.dashboard_url)
    assert stopped.status == jobs.STOPPED and stopped.end_time is not None


def test_a_failing_job_reports_its_exit_code_and_last_log_lines(
    head: RayHead, data_dir: Path
) -> None:
    missing = data_dir / "no-such-sweep.yaml"
    record = jobs.submit(
        ["sweep", "ensemble", "--config", str(missing)],
        address=head.dashboard_url,
        wait=True,
        timeout_s=120,
        env_vars={"BETML_DATA_DIR": str(data_dir)},
    )

    assert record.status == jobs.FAILED and record.exit_code == 2, record
    assert record.log_tail is not None and "no-such-sweep.yaml" in record.log_tail
    assert len(record.log_tail.splitlines()) <= jobs.LOG_TAIL_LINES
    shown = CliRunner().invoke(
        app, ["jobs", "status", record.submission_id, "--address", head.dashboard_url]
    )
    assert shown.exit_code == 0, shown.output
    assert "FAILED" in shown.output and "no-such-sweep.yaml" in shown.output
    followed = CliRunner().invoke(
        app, ["jobs", "logs", record.submission_id, "--follow", "--address", head.dashboard_url]
    )
    assert followed.exit_code == 1 and "exit code 2" in followed.output, followed.output


def test_a_wrong_or_missing_token_is_refused_clearly(
    head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    with pytest.raises(ConfigError, match="refused the token from RAY_AUTH_TOKEN"):
        jobs.list_jobs(address=head.dashboard_url)

    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token either
    with pytest.raises(ConfigError, match="requires a token and none was found"):
        jobs.list_jobs(address=head.dashboard_url)


def test_an_unknown_job_is_not_found(head: RayHead) -> None:
    with pytest.raises(NotFound, match="betml-no-such-job"):
        jobs.status("betml-no-such-job", address=head.dashboard_url)
    result = CliRunner().invoke(
        app, ["jobs", "logs", "betml-no-such-job", "--address", head.dashboard_url]
    )
    assert result.exit_code != 0 and isinstance(result.exception, NotFound)
