"""The store as configured by the settings: one migrated engine per process."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from betting.store import create_engine_for, migrate
from cluster.settings import Settings, get_settings


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    engine = create_engine_for(url)
    migrate(engine)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine of ``settings.database_url``, migrated to the latest schema on first use."""
    return _engine_for((settings or get_settings()).database_url)
