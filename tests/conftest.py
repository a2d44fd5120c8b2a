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
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
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
