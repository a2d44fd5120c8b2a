"""End to end on a real Ray head: backtest feedback over gRPC retrains, promotes and serves.

A head node is started with ``ray start --head`` (token auth, dashboard: the Jobs API) with a
temporary store and MLflow in its environment. A deliberately weak LightGBM is registered as
champion; the Serve application is deployed onto the head with ``betml serve up`` and a
retraining policy of one backtest per retraining. A client thread sends GetPrediction without
pause while one backtest export is submitted over gRPC: the ingress submits the retraining job
(``betml train ensemble --config configs/train/lightgbm-small.yaml --promote``), the job trains a
better challenger on the store and promotes it, and the application switches to it. No request
may fail, and the answers must switch from version 1 to 2 once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import yaml

from betting.ingest.backtest_export import EXAMPLE_PATH, load_backtest_export
from betting.store import create_engine_for
from serve.feedback import export_to_proto
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc
from tests.e2e.conftest import API_KEY, METADATA, MODEL, train_version, use_league_stores
from tests.ray_head import RayHead, free_ports, ray_head

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WEAK = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 1, "num_leaves": 2,
                                                           "learning_rate": 0.01}}}  # fmt: skip


@dataclass
class Cluster:
    head: RayHead
    stub: pb_grpc.MLServiceStub
    http: str
    env: dict[str, str]
    config: Path


@dataclass
class Answers:
    versions: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _serve_config(root: Path, http_port: int, grpc_port: int) -> Path:
    config = yaml.safe_load((REPO / "configs/serve/local.yaml").read_text())
    config["http_options"]["port"] = http_port
    config["grpc_options"]["port"] = grpc_port
    [app] = config["applications"]
    app["args"].update({
        "models": {"ensemble": {"families": ["lightgbm"], "preload": [MODEL],
                                "poll_interval_s": 0.5}},
        "agent": None,
        "retraining": {"training": {"family": "ensemble", "mode": "train",
                                    "config": "configs/train/lightgbm-small.yaml", "promote": True},
                       "every_feedback": 1, "max_log_loss_increase": None,
                       "check_interval_s": 3600},
    })  # fmt: skip
    app["deployments"] = [d for d in app["deployments"] if d["name"] in ("Ingress", "ensemble")]
    for deployment in app["deployments"]:
        deployment["autoscaling_config"].update(min_replicas=1, max_replicas=1)
    path = root / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, _mlflow_template: Path) -> Iterator[Cluster]:
    from cluster import tracking
    from cluster.settings import get_settings

    root = tmp_path_factory.mktemp("feedback-loop")
    with pytest.MonkeyPatch.context() as patch:
        use_league_stores(root, _mlflow_template, patch, "betml-feedback-loop")
        tracking.configure_mlflow(get_settings())
        assert train_version(WEAK) == 1
        tracking.promote(MODEL)
        http_port, grpc_port = free_ports(2)
        config = _serve_config(root, http_port, grpc_port)
        with ray_head(num_cpus=2) as head:
            client_env = {**os.environ, "RAY_ADDRESS": head.gcs_address,
                          "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head.token}  # fmt: skip
            up = subprocess.run(
                [sys.executable, "-m", "cluster.cli", "serve", "up", "--config", str(config)],
                env=client_env, cwd=REPO, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            stub = pb_grpc.MLServiceStub(channel)
            deadline = time.monotonic() + 120
            while stub.HealthCheck(pb.HealthCheckRequest(), timeout=10).status != (
                pb.SERVING_STATUS_SERVING
            ):
                assert time.monotonic() < deadline, "the application never became SERVING"
                time.sleep(0.5)
            try:
                yield Cluster(head, stub, f"http://127.0.0.1:{http_port}", client_env, config)
            finally:
                channel.close()
        get_settings.cache_clear()


def _ask_without_pause(
    stub: pb_grpc.MLServiceStub, event_key: str, stop: threading.Event, answers: Answers
) -> None:
    request = pb.GetPredictionRequest(event_key=event_key, market_key="1x2")
    while not stop.is_set():
        try:
            answer = stub.GetPrediction(request, metadata=METADATA, timeout=30)
        except grpc.RpcError as e:
            answers.errors.append(f"{e.code()}: {e.details()}")
            continue
        answers.versions.append(answer.model.version)
        answers.times.append(time.monotonic())
        time.sleep(0.02)


def _diagnosis(cluster: Cluster, answers: Answers) -> str:
    """Why version 2 never came: the jobs the cluster has, and the ingress replica's log."""
    headers = {"Authorization": f"Bearer {cluster.head.token}"}
    jobs = httpx.get(f"{cluster.head.dashboard_url}/api/jobs/", headers=headers, timeout=30)
    logs = sorted(cluster.head.temp_dir.glob("session_latest/logs/serve/*Ingress*.log"))
    tail = logs[-1].read_text(errors="replace")[-4000:] if logs else "(no ingress log)"
    ids = [j["submission_id"] for j in jobs.json() if j.get("submission_id")]
    job_logs = {i: httpx.get(f"{cluster.head.dashboard_url}/api/jobs/{i}/logs", headers=headers,
                             timeout=30).json().get("logs", "")[-3000:] for i in ids}  # fmt: skip
    from mlflow import MlflowClient

    registry = MlflowClient(cluster.env["MLFLOW_TRACKING_URI"]).get_registered_model(MODEL)
    return (f"errors {answers.errors[:3]}; aliases {registry.aliases}; jobs {ids}; "
            f"job logs {job_logs}; ingress log: {tail}")  # fmt: skip


def test_feedback_retrains_promotes_and_serves_the_new_champion(cluster: Cluster) -> None:
    engine = create_engine_for(cluster.env["DATABASE_URL"])
    with engine.connect() as connection:
        event_key = connection.exec_driver_sql(
            "SELECT key FROM events ORDER BY starts_at DESC LIMIT 1 OFFSET 20"
        ).scalar_one()
    engine.dispose()
    answers, stop = Answers(), threading.Event()
    client = threading.Thread(
        target=_ask_without_pause, args=(cluster.stub, event_key, stop, answers), daemon=True
    )
    client.start()
    try:
        time.sleep(2)
        assert answers.versions and set(answers.versions) == {"1"}, answers
        export = export_to_proto(load_backtest_export(EXAMPLE_PATH))
        submitted_at = time.monotonic()
        stored = cluster.stub.SubmitBacktestFeedback(
            pb.SubmitBacktestFeedbackRequest(export=export), metadata=METADATA, timeout=30
        )
        assert stored.runs_added == 1
        deadline = submitted_at + 420
        while "2" not in answers.versions:
            assert time.monotonic() < deadline, _diagnosis(cluster, answers)
            assert client.is_alive()
            time.sleep(0.5)
        switched = answers.times[answers.versions.index("2")] - submitted_at
        time.sleep(2)
    finally:
        stop.set()
        client.join(timeout=30)
    print(f"\nfeedback to serving the new champion: {switched:.1f} s")
    assert not answers.errors, answers.errors[:5]
    first_new = answers.versions.index("2")
    assert set(answers.versions[:first_new]) == {"1"}
    assert set(answers.versions[first_new:]) == {"2"}, "answers went back to the old version"

    headers = {"x-api-key": API_KEY}
    jobs = httpx.get(f"{cluster.http}/api/v1/models/training", headers=headers, timeout=30)
    assert jobs.status_code == 200, jobs.text
    [job] = [j for j in jobs.json()["jobs"] if j["purpose"] == "retraining"]
    assert job["job_id"] == "betml-retrain-feedback-1" and job["status"] == "SUCCEEDED"
    detail = httpx.get(f"{cluster.http}/api/v1/models/training/{job['job_id']}",
                       headers=headers, timeout=30).json()  # fmt: skip
    assert detail["progress"]["model_name"] == MODEL
    assert detail["progress"]["registered_version"] == 2
    assert detail["progress"]["mlflow_run_id"]
    # The same job over gRPC.
    listed = cluster.stub.ListTrainingJobs(pb.ListTrainingJobsRequest(), metadata=METADATA,
                                           timeout=30)  # fmt: skip
    assert job["job_id"] in {j.job_id for j in listed.jobs}
    found = cluster.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job["job_id"]),
                                        metadata=METADATA, timeout=30).job  # fmt: skip
    assert found.status == "SUCCEEDED" and found.purpose == "retraining"
    assert found.progress.registered_version == 2 and found.HasField("end_time")
    # The same feedback again is skipped, and nothing is retrained for it.
    again = cluster.stub.SubmitBacktestFeedback(
        pb.SubmitBacktestFeedbackRequest(export=export), metadata=METADATA, timeout=30
    )
    assert again.runs_skipped == 1


def test_betml_feedback_status_reports_the_loop(cluster: Cluster) -> None:
    # After the test above: one backtest stored, its retraining job done, no trigger due.
    shown = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "feedback", "status", "--config",
         str(cluster.config), "--address", cluster.head.dashboard_url],
        env={**cluster.env, "COLUMNS": "200"}, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    text = " ".join(shown.stdout.split())
    assert "stored backtest runs │ 1" in text
    assert "betml-retrain-feedback-1 SUCCEEDED (submitted at 1 runs)" in text
    assert "due │ no: no trigger is due" in text
    missing = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "feedback", "status", "--config", "nope.yaml"],
        env=cluster.env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "nope.yaml does not exist" in missing.stderr


def test_training_through_the_api_reports_progress_and_failures(cluster: Cluster) -> None:
    headers = {"x-api-key": API_KEY}
    body = {"family": "ensemble", "mode": "train", "config": "configs/train/lightgbm-small.yaml"}
    started = httpx.post(f"{cluster.http}/api/v1/models/train", json=body, headers=headers,
                         timeout=60)  # fmt: skip
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert job_id.startswith("betml-train-ensemble-")
    deadline = time.monotonic() + 300
    while True:
        detail = httpx.get(f"{cluster.http}/api/v1/models/training/{job_id}", headers=headers,
                           timeout=30).json()  # fmt: skip
        if detail["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        assert time.monotonic() < deadline, detail
        time.sleep(1)
    assert detail["status"] == "SUCCEEDED", detail
    assert detail["progress"]["registered_version"] is not None
    missing = httpx.get(f"{cluster.http}/api/v1/models/training/no-such-job", headers=headers,
                        timeout=30)  # fmt: skip
    assert missing.status_code == 404
    # A config that exists nowhere is refused before anything is submitted.
    absent = httpx.post(f"{cluster.http}/api/v1/models/train",
                        json={**body, "config": "configs/train/absent.yaml"}, headers=headers,
                        timeout=30)  # fmt: skip
    assert absent.status_code == 422 and "config" in absent.text
    with pytest.raises(grpc.RpcError) as caught:
        cluster.stub.StartTraining(
            pb.StartTrainingRequest(family="ensemble", config="configs/train/absent.yaml"),
            metadata=METADATA, timeout=30,
        )  # fmt: skip
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
