"""Settings: embedded defaults, environment overrides, secrets refused in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from betting.errors import ConfigError
from cluster.settings import Settings, get_settings

ENV_NAMES = [
    "BETML_ENV", "BETML_DATA_DIR", "DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME",
    "RAY_ADDRESS", "BETML_STORAGE_ROOT", "BETML_API_KEY", "API_KEY", "BETML_LOG_FORMAT",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    get_settings.cache_clear()


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings()
    assert s.env == "development"
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'betml.db'}"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'var' / 'mlflow.db'}"
    assert s.storage_root == tmp_path / "var" / "storage"
    assert s.ray_address is None and s.api_key is None
    assert s.effective_log_format == "console"
    assert not (tmp_path / "var").exists(), "reading settings must create nothing"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/betml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sweeps")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setenv("BETML_DATA_DIR", "/data")
    monkeypatch.setenv("BETML_API_KEY", "s3cret-key")
    s = get_settings()
    assert s.database_url == "postgresql+psycopg://u@db/betml"
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.mlflow_experiment_name == "sweeps"
    assert s.ray_address == "ray://head:10001"
    assert s.storage_root == Path("/data/storage")
    assert s.api_key is not None and s.api_key.get_secret_value() == "s3cret-key"
    assert "s3cret" not in repr(s)
    assert get_settings() is s, "settings are read once and cached"


@pytest.mark.parametrize("key", [None, "changeme", "dev"])
def test_production_refuses_missing_or_placeholder_keys(
    monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    monkeypatch.setenv("BETML_ENV", "production")
    if key is not None:
        monkeypatch.setenv("BETML_API_KEY", key)
    with pytest.raises(ConfigError, match="BETML_API_KEY"):
        get_settings()


def test_production_with_a_real_key_logs_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BETML_ENV", "production")
    monkeypatch.setenv("BETML_API_KEY", "9f1c2e7a-real")
    assert get_settings().effective_log_format == "json"
