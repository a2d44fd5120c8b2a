"""The artifact contract every model family follows, and the one loader serving uses.

An artifact is a folder: the family's own files (weights, fitted preprocessing) plus
``betml_artifact.json`` describing it: the family, the predictor class that loads it (a
predictor module, never a trainer), the feature columns and feature-schema version it was trained
on, and its training config. :func:`load_predictor` refuses an artifact whose feature-schema
version differs from the running code's, so a model never scores features it was not trained on.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from betting.errors import BetmlError, InvalidInput, NotFound

ARTIFACT_FILE = "betml_artifact.json"


class ArtifactMismatch(BetmlError):
    """An artifact was built for other features than the running code computes."""


class ArtifactMeta(BaseModel):
    """What ``betml_artifact.json`` holds."""

    model_config = ConfigDict(extra="forbid")

    family: str
    predictor: str = Field(description="'module:Class' of the predictor that loads the folder")
    sport: str
    market: str
    feature_columns: list[str]
    feature_schema_version: str
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@runtime_checkable
class Predictor(Protocol):
    """One small protocol for every outcome model family."""

    meta: ArtifactMeta

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Per-row win probabilities that sum to one within each market.

        ``features`` holds ``meta.feature_columns`` plus ``event_key`` and ``market_key``.
        """
        ...

    def save_files(self, folder: Path) -> None:
        """Write the family's own files (weights, preprocessing) into ``folder``."""
        ...

    @classmethod
    def load_files(cls, folder: Path, meta: ArtifactMeta) -> Self:
        """Rebuild the predictor from ``folder`` written by :meth:`save_files`."""
        ...


def save_artifact(predictor: Predictor, folder: Path) -> Path:
    """Write ``predictor`` to ``folder`` atomically (a half-written artifact never appears)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        predictor.save_files(staging)
        (staging / ARTIFACT_FILE).write_text(predictor.meta.model_dump_json(indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def read_meta(folder: Path) -> ArtifactMeta:
    """The description of the artifact in ``folder``."""
    path = Path(folder) / ARTIFACT_FILE
    if not path.is_file():
        raise NotFound(f"{folder} is not a betml artifact: {ARTIFACT_FILE} is missing")
    try:
        return ArtifactMeta.model_validate(json.loads(path.read_text()))
    except ValueError as e:
        raise InvalidInput(f"{path} is not a valid artifact description: {e}") from e


def _predictor_class(dotted: str) -> type[Predictor]:
    module_name, _, class_name = dotted.partition(":")
    if not class_name or ".train" in module_name:
        raise InvalidInput(f"artifact predictor {dotted!r} must be 'module:Class' of a predictor")
    try:
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as e:
        raise NotFound(f"artifact predictor {dotted!r} cannot be imported: {e}") from e


def load_predictor(folder: Path, *, feature_schema_version: str | None = None) -> Predictor:
    """Load any family's artifact, refusing one built for another feature-schema version.

    Args:
        folder: the artifact folder.
        feature_schema_version: what the running code computes; default
            ``betting.features.FEATURE_SCHEMA_VERSION``.
    """
    meta = read_meta(folder)
    if feature_schema_version is None:
        from betting.features import FEATURE_SCHEMA_VERSION

        feature_schema_version = FEATURE_SCHEMA_VERSION
    if meta.feature_schema_version != feature_schema_version:
        raise ArtifactMismatch(
            f"{folder}: built for feature schema {meta.feature_schema_version!r}, but this code "
            f"computes {feature_schema_version!r}; retrain the model or serve matching code"
        )
    return _predictor_class(meta.predictor).load_files(Path(folder), meta)


def check_features(features: pd.DataFrame, meta: ArtifactMeta) -> None:
    """Raise :class:`InvalidInput` naming the columns a request lacks."""
    missing = [c for c in [*meta.feature_columns, "event_key", "market_key"] if c not in features]
    if missing:
        raise InvalidInput(f"features lack column(s) {missing} needed by {meta.family}")
