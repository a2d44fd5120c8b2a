"""Shared fixtures: a real store on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set).

Each store is migrated once per test session with Alembic; each test runs inside a transaction
that is rolled back, so tests never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from betting.schema import Base
from betting.store import create_engine_for, migrate

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL is not set"
            ),
        ],
    ),
]


def _fresh_postgres(url: str) -> Engine:
    engine = create_engine_for(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    return engine


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated, empty database engine for each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "betml.db"
        engine = create_engine_for(f"sqlite:///{path}")
    else:
        engine = _fresh_postgres(os.environ["TEST_DATABASE_URL"])
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back when the test ends (commits become savepoints)."""
    connection = engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db
    finally:
        db.close()
        outer.rollback()
        connection.close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


# --- Ray and MLflow: one small local Ray per session, a fresh MLflow store per test ----------

#: Environment variables MLflow itself writes when configured; restored after each test.
_MLFLOW_WRITTEN_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[object]:
    """One local Ray for the whole session: 2 CPUs, no dashboard, a ~200 MB object store.

    Workers inherit the environment of the moment it starts, so tests that change the
    environment later must pass what trials need through their config.
    """
    from cluster.ray_runtime import connect, shutdown
    from cluster.settings import Settings

    context = connect(
        Settings(ray_address=None),  # a local Ray even where RAY_ADDRESS names a cluster
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        log_to_driver=False,
    )
    yield context
    shutdown()


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store (MLflow's migrations take seconds: do them once)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(
    _mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """A fresh MLflow tracking and registry store on SQLite in ``tmp_path``, configured.

    Sets ``MLFLOW_TRACKING_URI``, ``BETML_DATA_DIR`` (artifacts and storage go under
    ``tmp_path``) and ``MLFLOW_EXPERIMENT_NAME``; yields the ``MlflowClient`` of
    ``cluster.tracking.configure_mlflow``.
    """
    import shutil

    import mlflow

    from cluster.settings import get_settings
    from cluster.tracking import configure_mlflow

    db = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_template, db)
    for name in (*_MLFLOW_WRITTEN_ENV, "BETML_STORAGE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("BETML_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "betml-tests")
    get_settings.cache_clear()
    yield configure_mlflow(get_settings())
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets MLflow's global URI
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    get_settings.cache_clear()
