"""Infrastructure settings, read from the environment (and a ``.env`` file) by pydantic-settings.

Every setting has an embedded default that works on a laptop: the store and MLflow are SQLite
files under the data directory (``./var``), Ray starts locally. Nothing is read or created at
import; call :func:`get_settings` from an entry point.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from betting.errors import ConfigError

#: API keys that must never guard a production deployment.
_PLACEHOLDER_KEYS = {"", "changeme", "change-me", "dev", "development", "secret", "test"}


class Settings(BaseSettings):
    """betml's environment. Field docs double as the README's configuration table."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "test", "production"] = Field(
        "development", validation_alias="BETML_ENV"
    )
    """Where betml runs; ``production`` refuses a missing or placeholder API key."""

    data_dir: Path = Field(Path("var"), validation_alias="BETML_DATA_DIR")
    """Folder for embedded defaults: the SQLite store, MLflow's SQLite store and artifacts."""

    database_url_: str | None = Field(None, validation_alias="DATABASE_URL")
    """SQLAlchemy URL of the store; default ``sqlite:///<data_dir>/betml.db``."""

    mlflow_tracking_uri_: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    """MLflow tracking and registry URI; default ``sqlite:///<data_dir>/mlflow.db``."""

    mlflow_experiment_name: str = Field("betml", validation_alias="MLFLOW_EXPERIMENT_NAME")
    """MLflow experiment that runs are logged to."""

    ray_address: str | None = Field(None, validation_alias="RAY_ADDRESS")
    """Ray cluster to join (``ray://...``, ``auto`` or ``host:port``); unset starts a local Ray."""

    storage_root_: Path | None = Field(None, validation_alias="BETML_STORAGE_ROOT")
    """Where Tune results, checkpoints and exported models go; default ``<data_dir>/storage``."""

    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("BETML_API_KEY", "API_KEY")
    )
    """Key required on mutating endpoints (header/metadata ``x-api-key``)."""

    feature_store_url: str | None = Field(None, validation_alias="BETML_FEATURE_STORE_URL")
    """Where online feature state is kept: unset (or ``embedded``) in each serving process,
    ``redis://host:6379/0`` to share it between replicas and keep it across restarts."""

    log_level: str = Field("INFO", validation_alias="BETML_LOG_LEVEL")
    """Log level of betml's loggers."""

    log_format: Literal["console", "json"] | None = Field(None, validation_alias="BETML_LOG_FORMAT")
    """``json`` or ``console``; default ``json`` in production, ``console`` elsewhere."""

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "production":
            key = self.api_key.get_secret_value() if self.api_key else ""
            if key.strip().lower() in _PLACEHOLDER_KEYS:
                raise ValueError(
                    "BETML_API_KEY must be set to a real secret when BETML_ENV=production"
                )
        return self

    @property
    def database_url(self) -> str:
        return self.database_url_ or f"sqlite:///{self.data_dir.resolve() / 'betml.db'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri_ or f"sqlite:///{self.data_dir.resolve() / 'mlflow.db'}"

    @property
    def storage_root(self) -> Path:
        return (self.storage_root_ or self.data_dir / "storage").resolve()

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.env == "production" else "console")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    try:
        return Settings()
    except ValueError as e:
        raise ConfigError(f"invalid betml settings: {e}") from e
