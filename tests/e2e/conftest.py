"""The Serve application running on the shared local Ray, with a real model and a real store.

One module-scoped set-up (starting Serve takes seconds): three simulated seasons of a 10-team
league in a temporary SQLite store, a small LightGBM model trained on them through the shared
training pipeline and registered (champion) in a temporary MLflow store, and the application
started with ``serve.run`` on free HTTP and gRPC ports. The replicas get the stores and an API
key through the application's runtime env, like a deployment gets them from its environment.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from mlflow import MlflowClient

from betting.batch import EventBatch
from betting.simulate import simulate
from betting.store import create_engine_for, load_batch, migrate, session_scope, write_batch
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc

API_KEY = "e2e-test-key"
MODEL = "betml-lightgbm-football-1x2"
METADATA = (("x-api-key", API_KEY),)
SMALL = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 30}}}


@dataclass
class Served:
    """What the tests talk to."""

    stub: pb_grpc.MLServiceStub
    http: str
    database_url: str
    client: MlflowClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_version(params: dict[str, object]) -> int:
    """Fit, judge, log and register a LightGBM version on the stored league (challenger)."""
    from cluster.training import DataConfig, train_and_log
    from ensembles.fit import PREDICTOR_PATH, fit_ensemble

    data = DataConfig(sport="football", market="1x2", holdout_seasons=1)
    result = train_and_log("lightgbm", fit_ensemble, params, data, predictor_path=PREDICTOR_PATH)
    assert result.version is not None
    return result.version


def use_league_stores(
    root: Path, mlflow_template: Path, patch: pytest.MonkeyPatch, experiment: str
) -> dict[str, str]:
    """Point betml at a new store and MLflow under ``root`` (through ``patch``), store three
    simulated seasons of a 10-team league in it; the environment that names them."""
    from cluster.settings import get_settings

    shutil.copyfile(mlflow_template, root / "mlflow.db")
    env = {
        "DATABASE_URL": f"sqlite:///{root / 'betml.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BETML_DATA_DIR": str(root),
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "BETML_ENV": "test",
        "BETML_API_KEY": API_KEY,
    }
    for name in ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "BETML_STORAGE_ROOT"):
        patch.delenv(name, raising=False)
    for name, value in env.items():
        patch.setenv(name, value)
    get_settings.cache_clear()
    engine = create_engine_for(env["DATABASE_URL"])
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, simulate("football", 3, seed=5, teams=10))
    engine.dispose()
    return env


def wait_until_serving(
    stub: pb_grpc.MLServiceStub, timeout_s: float = 90.0
) -> pb.HealthCheckResponse:
    deadline = time.monotonic() + timeout_s
    while True:
        health = stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
        if health.status == pb.SERVING_STATUS_SERVING or time.monotonic() > deadline:
            return health
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stored(served: Served) -> EventBatch:
    """Everything in the application's store, as the tests' source of events."""
    engine = create_engine_for(served.database_url)
    with session_scope(engine) as session:
        batch = load_batch(session)
    engine.dispose()
    return batch


@pytest.fixture(scope="module")
def served(
    ray_local: object, _mlflow_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    from ray import serve

    from cluster import tracking
    from cluster.settings import get_settings
    from serve.app import GRPC_SERVICER_FUNCTION, build_app
    from serve.config import ServeArgs

    root = tmp_path_factory.mktemp("serve-e2e")
    with pytest.MonkeyPatch.context() as patch:
        env = use_league_stores(root, _mlflow_template, patch, "betml-e2e")
        client = tracking.configure_mlflow(get_settings())
        train_version(SMALL)
        tracking.promote(MODEL)

        http_port, grpc_port = free_port(), free_port()
        serve.start(
            http_options={"host": "127.0.0.1", "port": http_port},
            grpc_options={"port": grpc_port, "grpc_servicer_functions": [GRPC_SERVICER_FUNCTION]},
        )
        args = ServeArgs.model_validate({
            "models": {"ensemble": {"families": ["lightgbm"], "preload": [MODEL],
                                    "poll_interval_s": 0.5}},
            "features": {"warm_sports": ["football"]},
            "runtime_env": {"env_vars": env},
        })  # fmt: skip
        serve.run(build_app(args), name="betml", route_prefix="/")
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = pb_grpc.MLServiceStub(channel)
        try:
            health = wait_until_serving(stub)
            assert health.status == pb.SERVING_STATUS_SERVING, health
            yield Served(stub, f"http://127.0.0.1:{http_port}", env["DATABASE_URL"], client)
        finally:
            channel.close()
            serve.shutdown()
            import mlflow

            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
            get_settings.cache_clear()
