"""MLflow for betml: the experiment, run tags, training summaries and the model registry.

Every training run carries the same tags (:func:`run_tags`): the data hash, the feature-schema
version, the config hash, the git commit and what it models. Artifacts are folders logged with
``mlflow.log_artifacts``; a winner is registered as ``betml-<family>-<sport>-<market>``
(:func:`model_name`) pointing at ``runs:/<run_id>/<artifact_path>``, tagged with its holdout
score and takes the alias ``challenger``. :func:`promote` moves ``champion`` to the challenger
only when it beats the champion on the same holdout. Aliases only: stages are deprecated.

The holdout score is lower-is-better: the log loss for outcome models; a family judged by
something else registers a named score instead (the DQN staking agent: ``neg_log_growth``, the
negative log growth of its bankroll over the holdout), and only scores of the same name compare.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from betting.errors import ConfigError, InvalidInput, NotFound
from cluster.ray_runtime import current_submission_id, git_commit
from cluster.settings import Settings, get_settings

logger = logging.getLogger(__name__)

TAG_DATA_HASH = "betml.data_hash"
TAG_FEATURE_VERSION = "betml.feature_version"
TAG_CONFIG_HASH = "betml.config_hash"
TAG_GIT_COMMIT = "betml.git_commit"
TAG_FAMILY = "betml.family"
TAG_SPORT = "betml.sport"
TAG_MARKET = "betml.market"
TAG_SWEEP = "betml.sweep"
#: The Ray job (submission id) that made the run, when it ran as one (``betml submit``, the API).
TAG_JOB_ID = "betml.job_id"
#: Model-version tags written by :func:`register` and read by :func:`promote`.
TAG_HOLDOUT_LOG_LOSS = "betml.holdout_log_loss"
TAG_HOLDOUT_ID = "betml.holdout_id"
#: A lower-is-better holdout score other than the log loss, and its name (see :func:`register`).
TAG_HOLDOUT_SCORE = "betml.holdout_score"
TAG_HOLDOUT_SCORE_NAME = "betml.holdout_score_name"
SCORE_LOG_LOSS = "log_loss"

ALIAS_CHAMPION = "champion"
ALIAS_CHALLENGER = "challenger"
MODEL_PREFIX = "betml"
SUMMARY_FILE = "training_summary.json"

_PART = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]*")
_MODEL_REF = re.compile(r"(?:models:/)?(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?")
_MISSING = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
_EXISTS = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}


def configure_mlflow(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow at betml's tracking and registry store and select its experiment.

    With a SQLite store (server-less) the experiment keeps its artifacts under
    ``<data_dir>/mlartifacts``. Called by entry points, never at import.
    """
    settings = settings or get_settings()
    uri = settings.mlflow_tracking_uri
    artifact_location = None
    if uri.startswith("sqlite:"):
        _sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
        artifact_location = (settings.data_dir / "mlartifacts").resolve().as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = settings.mlflow_experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as e:  # created meanwhile by another process
            if e.error_code not in _EXISTS:
                raise
        experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow experiment {name!r} is deleted in {uri}; restore it or set "
            "MLFLOW_EXPERIMENT_NAME to another name"
        )
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return client


def _sqlite_path(uri: str) -> Path:
    path = uri.split("?", 1)[0].removeprefix("sqlite:///")
    return Path(path) if uri.startswith("sqlite:///") else Path(".")


def _client(client: MlflowClient | None) -> MlflowClient:
    if client is not None:
        return client
    uri = get_settings().mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _check_part(what: str, value: str) -> str:
    if not isinstance(value, str) or not _PART.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} must be lowercase letters and digits, words joined by '-'"
        )
    return value


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable hash of a training config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def data_hash(frame: pd.DataFrame) -> str:
    """A stable hash of a DataFrame's column names and values, row order included, index ignored."""
    digest = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    try:
        rows = pd.util.hash_pandas_object(frame, index=False)
    except TypeError as e:
        raise InvalidInput(f"cannot hash a frame with unhashable values: {e}") from e
    digest.update(rows.to_numpy().tobytes())
    return digest.hexdigest()


def run_tags(
    *,
    data_hash: str,
    feature_version: str,
    config: Mapping[str, Any],
    family: str,
    sport: str,
    market: str,
) -> dict[str, str]:
    """The tags every betml training run carries."""
    return {
        TAG_DATA_HASH: data_hash,
        TAG_FEATURE_VERSION: feature_version,
        TAG_CONFIG_HASH: config_hash(config),
        TAG_GIT_COMMIT: git_commit(),
        TAG_FAMILY: _check_part("family", family),
        TAG_SPORT: _check_part("sport", sport),
        TAG_MARKET: _check_part("market", market),
        **job_tags(),
    }


def job_tags() -> dict[str, str]:
    """``{TAG_JOB_ID: <submission id>}`` inside a submitted Ray job, else nothing."""
    job = current_submission_id()
    return {TAG_JOB_ID: job} if job else {}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise InvalidInput(f"{type(value).__name__} value {value!r} cannot be written as JSON")


def log_summary(
    summary: Mapping[str, Any],
    run_id: str,
    *,
    client: MlflowClient | None = None,
    folder: Path | None = None,
) -> Path:
    """Write ``training_summary.json`` and log it as an artifact of run ``run_id``.

    Args:
        summary: what the run did and scored (JSON-able; numpy values, dates and paths allowed).
        run_id: the MLflow run.
        client: MLflow client (default: one on the settings' tracking URI).
        folder: where the local copy goes (default ``<storage_root>/runs/<run_id>``).

    Returns:
        The local copy's path.
    """
    text = json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
    folder = folder or get_settings().storage_root / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SUMMARY_FILE
    path.write_text(text + "\n")
    _client(client).log_artifact(run_id, str(path))
    return path


def market_slug(market: str) -> str:
    """A market key as it appears in registered model names (``total:2.5`` -> ``total-2-5``)."""
    return re.sub(r"[^a-z0-9]+", "-", market.lower()).strip("-")


def model_name(family: str, sport: str, market: str) -> str:
    """The registered name of a family's model for one sport and market."""
    parts = [
        _check_part("family", family),
        _check_part("sport", sport),
        _check_part("market", market),
    ]
    return "-".join([MODEL_PREFIX, *parts])


def _check_name(name: str) -> str:
    return _check_part("model name", name)


def _check_alias(alias: str) -> str:
    if not _ALIAS.fullmatch(alias):
        raise InvalidInput(f"alias {alias!r} must be lowercase letters, digits, '-' or '_'")
    return alias


def _registered(client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code in _MISSING:
            raise NotFound(f"no registered model named {name!r}") from e
        raise


def _version(client: MlflowClient, name: str, version: int | str) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as e:
        if e.error_code in _MISSING:
            raise NotFound(f"model {name!r} has no version {version}") from e
        raise


def register(
    run_id: str,
    artifact_path: str,
    name: str,
    *,
    holdout_log_loss: float | None = None,
    holdout_id: str,
    holdout_score: tuple[str, float] | None = None,
    client: MlflowClient | None = None,
) -> int:
    """Register the run's artifact folder as a new version of ``name`` and make it the challenger.

    Args:
        run_id: the MLflow run that logged the artifact folder.
        artifact_path: the folder's path inside the run's artifacts.
        name: registered model name (see :func:`model_name`).
        holdout_log_loss: the version's log loss on the holdout.
        holdout_id: names the holdout (data and split) the score is on; only scores on the same
            holdout are compared by :func:`promote`.
        holdout_score: instead of ``holdout_log_loss``, ``(name, value)`` of another
            lower-is-better holdout score, e.g. ``("neg_log_growth", -0.12)``; pass one of the
            two.
        client: MLflow client (default: one on the settings' tracking URI).

    Returns:
        The new version number.
    """
    _check_name(name)
    score_tags = _score_tags(holdout_log_loss, holdout_score)
    if not holdout_id.strip():
        raise InvalidInput("holdout_id must name the holdout the log loss was measured on")
    client = _client(client)
    artifact_path = artifact_path.strip("/")
    try:
        found = client.list_artifacts(run_id, artifact_path)
    except MlflowException as e:
        if e.error_code in _MISSING:
            raise NotFound(f"no MLflow run {run_id!r}") from e
        raise
    if not found:
        raise NotFound(f"run {run_id} has no artifact folder {artifact_path!r}")
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code not in _EXISTS:
            raise
    version = client.create_model_version(
        name,
        source=f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        tags={**score_tags, TAG_HOLDOUT_ID: holdout_id},
    )
    client.set_registered_model_alias(name, ALIAS_CHALLENGER, version.version)
    logger.info("registered %s version %s as challenger", name, version.version)
    return int(version.version)


def _score_tags(
    holdout_log_loss: float | None, holdout_score: tuple[str, float] | None
) -> dict[str, str]:
    if (holdout_log_loss is None) == (holdout_score is None):
        raise InvalidInput("register needs one of holdout_log_loss and holdout_score")
    if holdout_score is None:
        assert holdout_log_loss is not None
        if not math.isfinite(holdout_log_loss) or holdout_log_loss < 0:
            raise InvalidInput(
                f"holdout_log_loss {holdout_log_loss!r} must be a finite number >= 0"
            )
        return {TAG_HOLDOUT_LOG_LOSS: repr(float(holdout_log_loss))}
    score_name, value = holdout_score
    if not _ALIAS.fullmatch(score_name) or score_name == SCORE_LOG_LOSS:
        raise InvalidInput(f"holdout score name {score_name!r} must be a word like neg_log_growth")
    if not math.isfinite(value):
        raise InvalidInput(f"holdout score {score_name} {value!r} must be a finite number")
    return {TAG_HOLDOUT_SCORE: repr(float(value)), TAG_HOLDOUT_SCORE_NAME: score_name}


@dataclass(frozen=True)
class _Score:
    version: int
    log_loss: float | None
    """The lower-is-better holdout score: the log loss, or the score named ``name``."""
    holdout_id: str | None
    name: str = SCORE_LOG_LOSS


def _score(version: ModelVersion) -> _Score:
    name = version.tags.get(TAG_HOLDOUT_SCORE_NAME, SCORE_LOG_LOSS)
    raw = version.tags.get(TAG_HOLDOUT_SCORE if name != SCORE_LOG_LOSS else TAG_HOLDOUT_LOG_LOSS)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        value = None
    return _Score(int(version.version), value, version.tags.get(TAG_HOLDOUT_ID), name)


def _alias_score(client: MlflowClient, model: RegisteredModel, alias: str) -> _Score | None:
    version = model.aliases.get(alias)
    return None if version is None else _score(_version(client, model.name, version))


@dataclass(frozen=True)
class PromotionDecision:
    """What :func:`promote` decided, why, and the numbers it compared."""

    name: str
    promoted: bool
    reason: str
    challenger_version: int
    challenger_log_loss: float | None
    """The challenger's holdout score: its log loss, or the score named by ``score_name``."""
    challenger_holdout_id: str | None
    champion_version: int | None
    """The champion before the decision (None: there was none)."""
    champion_log_loss: float | None
    champion_holdout_id: str | None
    score_name: str = SCORE_LOG_LOSS
    """What the two ``*_log_loss`` numbers are (lower is better)."""


def promote(
    name: str, *, force: bool = False, client: MlflowClient | None = None
) -> PromotionDecision:
    """Move the alias ``champion`` to the challenger when it has earned it.

    The challenger is promoted when there is no champion, when its holdout log loss (or other
    named lower-is-better score, see :func:`register`) is strictly lower than the champion's on
    the same holdout id, or when ``force`` is set. A champion scored
    on another holdout is not comparable: that refuses unless ``force``.

    Raises:
        NotFound: no such model, or it has no challenger.
    """
    client = _client(client)
    model = _registered(client, _check_name(name))
    challenger = _alias_score(client, model, ALIAS_CHALLENGER)
    if challenger is None:
        raise NotFound(f"model {name!r} has no {ALIAS_CHALLENGER}; register a version first")
    champion = _alias_score(client, model, ALIAS_CHAMPION)
    promoted, reason = _judge(challenger, champion, force)
    if promoted:
        client.set_registered_model_alias(name, ALIAS_CHAMPION, str(challenger.version))
    logger.info("promote %s v%s: %s (%s)", name, challenger.version, promoted, reason)
    return PromotionDecision(
        name=name,
        promoted=promoted,
        reason=reason,
        challenger_version=challenger.version,
        challenger_log_loss=challenger.log_loss,
        challenger_holdout_id=challenger.holdout_id,
        champion_version=champion.version if champion else None,
        champion_log_loss=champion.log_loss if champion else None,
        champion_holdout_id=champion.holdout_id if champion else None,
        score_name=challenger.name,
    )


def _judge(challenger: _Score, champion: _Score | None, force: bool) -> tuple[bool, str]:
    if champion is not None and champion.version == challenger.version:
        return False, f"version {challenger.version} is already the champion"
    if force:
        return True, "forced"
    if champion is None:
        return True, "there was no champion"
    if challenger.log_loss is None or champion.log_loss is None:
        return False, "a holdout log loss is missing, so the two cannot be compared; use force"
    if challenger.name != champion.name:
        return False, (
            f"challenger is scored by {challenger.name}, champion by {champion.name}: "
            "not comparable; use force"
        )
    what = "log loss" if challenger.name == SCORE_LOG_LOSS else challenger.name
    if challenger.holdout_id != champion.holdout_id:
        return False, (
            f"challenger scored on holdout {challenger.holdout_id!r}, champion on "
            f"{champion.holdout_id!r}: scores on different holdouts are not comparable; "
            "re-score the champion on the same holdout or use force"
        )
    if challenger.log_loss < champion.log_loss:
        return True, (
            f"challenger {what} {challenger.log_loss:.6f} < champion's "
            f"{champion.log_loss:.6f} on holdout {challenger.holdout_id!r}"
        )
    return False, (
        f"challenger {what} {challenger.log_loss:.6f} is not lower than champion's "
        f"{champion.log_loss:.6f} on holdout {challenger.holdout_id!r}"
    )


@dataclass(frozen=True)
class ModelSummary:
    """One registered model: how many versions, and who holds each alias with what score."""

    name: str
    versions: int
    champion_version: int | None
    champion_log_loss: float | None
    champion_holdout_id: str | None
    challenger_version: int | None
    challenger_log_loss: float | None
    challenger_holdout_id: str | None


def list_models(*, client: MlflowClient | None = None) -> list[ModelSummary]:
    """Every betml registered model (named ``betml-...``), sorted by name."""
    client = _client(client)
    models: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{MODEL_PREFIX}-%'", page_token=token
        )
        models.extend(page)
        token = page.token
        if not token:
            break
    summaries = []
    for model in sorted(models, key=lambda m: m.name):
        versions = client.search_model_versions(f"name = '{model.name}'")
        champion = _alias_score(client, model, ALIAS_CHAMPION)
        challenger = _alias_score(client, model, ALIAS_CHALLENGER)
        summaries.append(
            ModelSummary(
                name=model.name,
                versions=len(versions),
                champion_version=champion.version if champion else None,
                champion_log_loss=champion.log_loss if champion else None,
                champion_holdout_id=champion.holdout_id if champion else None,
                challenger_version=challenger.version if challenger else None,
                challenger_log_loss=challenger.log_loss if challenger else None,
                challenger_holdout_id=challenger.holdout_id if challenger else None,
            )
        )
    return summaries


def resolve(name_or_uri: str, *, client: MlflowClient | None = None) -> tuple[str, int]:
    """The (name, version) a reference points at.

    Accepts ``name`` (its champion), ``name@alias``, ``name/<version>``, each optionally
    prefixed with ``models:/``.

    Raises:
        InvalidInput: the reference is malformed.
        NotFound: the model, alias or version does not exist.
    """
    match = _MODEL_REF.fullmatch(name_or_uri.strip())
    if match is None:
        raise InvalidInput(
            f"model reference {name_or_uri!r} must be name, name@alias or name/<version>, "
            "optionally prefixed with models:/"
        )
    name = _check_name(match["name"])
    client = _client(client)
    model = _registered(client, name)
    if match["version"] is not None:
        return name, int(_version(client, name, match["version"]).version)
    alias = _check_alias(match["alias"] or ALIAS_CHAMPION)
    version = model.aliases.get(alias)
    if version is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return name, int(version)


def download_model(
    name_or_uri: str, dst: Path | str, *, client: MlflowClient | None = None
) -> Path:
    """Download the artifact folder of the version ``name_or_uri`` resolves to into ``dst``.

    Returns:
        The local folder (``dst/<artifact folder name>``).
    """
    client = _client(client)
    name, version = resolve(name_or_uri, client=client)
    source = _version(client, name, version).source
    if not source:
        raise NotFound(f"model {name!r} version {version} has no source to download")
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    if source.startswith("runs:/"):
        run_id, _, artifact_path = source.removeprefix("runs:/").partition("/")
        local = client.download_artifacts(run_id, artifact_path, str(dst))
    else:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(dst), tracking_uri=client.tracking_uri
        )
    return Path(local)
