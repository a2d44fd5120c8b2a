"""Connecting betml's entry points to Ray: a cluster when ``RAY_ADDRESS`` is set, else a local Ray.

Only entry points call :func:`connect`. On a cluster the repository root travels to the workers
as the runtime env's ``working_dir`` (minus :data:`JOB_EXCLUDES`), so ``python -m rl.train`` and
the trainables it launches import the same code on every node. Token authentication stays on:
a cluster that uses it needs the token here too (``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``); a local Ray makes its own.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import ray
from ray._private.worker import BaseContext
from ray.exceptions import AuthenticationError

from betting.errors import ConfigError, InvalidInput
from cluster.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: Paths (gitignore syntax, relative to the repository root) never shipped to a cluster: the
#: environment, local data and stores, caches, and the big test fixtures. ``.env`` stays home
#: because it holds this machine's secrets and paths; a cluster gets its settings from its own
#: environment or the job's ``env_vars``.
JOB_EXCLUDES: tuple[str, ...] = (
    ".venv/",
    "var/",
    ".git/",
    ".env",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".hypothesis/",
    "*.egg-info/",
    "build/",
    "mlruns/",
    "mlartifacts/",
    "*.db",
    "*.db-journal",
    "*.parquet",
    "tests/fixtures/",
)

#: Set on every worker. RLlib imports TensorFlow whenever it is installed (seconds and hundreds
#: of MB per process) unless this variable exists. It only changes RLlib's own
#: ``try_import_tf``/``try_import_tfp``: betml's RLlib code runs on the new API stack, which is
#: PyTorch only, and the Keras classifiers import TensorFlow directly, so it is safe everywhere.
NO_RLLIB_TF_ENV_VARS: Mapping[str, str] = {"RLLIB_TEST_NO_TF_IMPORT": "1"}

#: Carries the submitting checkout's commit to workers, whose copy of the code has no ``.git``.
GIT_COMMIT_ENV = "BETML_GIT_COMMIT"

#: Ray's token settings (read by Ray itself; named here for error messages).
AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"

_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray Jobs in a submitted job's driver
_SUBMISSION_ID_KEY = "job_submission_id"  # Ray's key of the submission id in that job config
_context: BaseContext | None = None


def repo_root() -> Path:
    """The repository root: the folder holding ``betting/`` and ``cluster/``."""
    return Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the running code: ``BETML_GIT_COMMIT``, else ``git rev-parse HEAD``, else
    ``"unknown"`` (a cluster worker's copy of the code has no ``.git``)."""
    if commit := os.environ.get(GIT_COMMIT_ENV, "").strip():
        return commit
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def find_auth_token(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> str | None:
    """Where Ray will read its token from, in Ray's order, or None when there is none.

    Raises:
        ConfigError: ``RAY_AUTH_TOKEN_PATH`` names a missing or empty file.
    """
    environ = os.environ if environ is None else environ
    if environ.get(AUTH_TOKEN_ENV, "").strip():
        return AUTH_TOKEN_ENV
    if path_text := environ.get(AUTH_TOKEN_PATH_ENV, "").strip():
        path = Path(path_text).expanduser()
        if not path.is_file() or not path.read_text().strip():
            raise ConfigError(
                f"{AUTH_TOKEN_PATH_ENV}={path_text} names no token file (or an empty one)"
            )
        return f"{AUTH_TOKEN_PATH_ENV}={path_text}"
    default = (Path.home() if home is None else home) / ".ray" / "auth_token"
    if default.is_file() and default.read_text().strip():
        return str(default)
    return None


def check_token_auth(
    address: str, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> str | None:
    """Check the token needed to join the cluster at ``address``; return where it comes from.

    With ``RAY_AUTH_MODE=token`` a token is required; with ``disabled`` none is used; unset, a
    token found is used (as Ray does for a local cluster) and none found leaves it to the
    cluster to refuse.

    Raises:
        ConfigError: the cluster needs a token and none was found; the message names the
            three places a token may come from.
    """
    environ = os.environ if environ is None else environ
    mode = environ.get(AUTH_MODE_ENV, "").strip().lower()
    if mode == "disabled":
        return None
    source = find_auth_token(environ, home)
    if source is None and mode == "token":
        raise ConfigError(_missing_token_message(address))
    return source


def _missing_token_message(address: str) -> str:
    return (
        f"the Ray cluster at {address} uses token authentication but no token was found: "
        f"set {AUTH_TOKEN_ENV}, point {AUTH_TOKEN_PATH_ENV} at a token file, or "
        "put the token in ~/.ray/auth_token (`ray get-auth-token` on the head node prints it)"
    )


def _enable_token_mode() -> None:
    # Ray reads RAY_AUTH_MODE once at import; this is the call Ray itself makes when it finds a
    # token for a local cluster (ray 2.60 pins it).
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def worker_env_vars(*, keep_tensorflow_out_of_rllib: bool = True) -> dict[str, str]:
    """Environment variables betml sets on every worker of a job."""
    env = {GIT_COMMIT_ENV: git_commit()}
    if keep_tensorflow_out_of_rllib:
        env.update(NO_RLLIB_TF_ENV_VARS)
    return env


def build_runtime_env(
    runtime_env: Mapping[str, Any] | None = None,
    *,
    ship_code: bool,
    keep_tensorflow_out_of_rllib: bool = True,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """betml's job runtime env merged with the caller's (the caller's values win).

    Args:
        runtime_env: extra runtime env fields; its ``env_vars`` are merged per variable and its
            ``excludes`` added to :data:`JOB_EXCLUDES`.
        ship_code: send the repository root as ``working_dir`` (for a cluster).
        keep_tensorflow_out_of_rllib: set :data:`NO_RLLIB_TF_ENV_VARS` on workers.
        environ: the process environment (default ``os.environ``). Inside a submitted Ray job
            the job's runtime env already carries the code and may set the same variables:
            betml's defaults give way to it (Ray refuses a driver runtime env that conflicts with
            the job's); the caller's fields are passed on as given.
    """
    environ = os.environ if environ is None else environ
    job_env = _submitted_job_runtime_env(environ) or {}
    job_vars = job_env.get("env_vars") or {}
    extra = dict(runtime_env or {})
    defaults = worker_env_vars(keep_tensorflow_out_of_rllib=keep_tensorflow_out_of_rllib)
    env_vars = {k: v for k, v in defaults.items() if k not in job_vars}
    env_vars.update(extra.pop("env_vars", None) or {})
    merged: dict[str, Any] = {}
    if ship_code and "working_dir" not in extra and "working_dir" not in job_env:
        merged["working_dir"] = str(repo_root())
        merged["excludes"] = [*JOB_EXCLUDES, *(extra.pop("excludes", None) or [])]
    merged.update(extra)
    if env_vars:
        merged["env_vars"] = env_vars
    return merged


def current_submission_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The submission id of the Ray job this process is the driver of (None outside a job)."""
    raw = (os.environ if environ is None else environ).get(_JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        value = json.loads(raw).get("metadata", {}).get(_SUBMISSION_ID_KEY)
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


def _submitted_job_runtime_env(environ: Mapping[str, str]) -> dict[str, Any] | None:
    raw = environ.get(_JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        return dict(json.loads(raw).get("runtime_env") or {})
    except (ValueError, AttributeError):
        return None


def connect(
    settings: Settings | None = None,
    *,
    num_cpus: int | None = None,
    include_dashboard: bool = False,
    runtime_env: Mapping[str, Any] | None = None,
    object_store_memory: int | None = None,
    log_to_driver: bool = True,
    keep_tensorflow_out_of_rllib: bool = True,
) -> BaseContext:
    """Connect this process to Ray, once; later calls return the same context.

    Args:
        settings: betml's settings (default :func:`get_settings`); ``ray_address`` picks the
            cluster, unset starts a local Ray.
        num_cpus: CPUs of a local Ray (default: all of this machine's).
        include_dashboard: start the dashboard with a local Ray (Ray Jobs need it).
        runtime_env: extra runtime env fields, merged by :func:`build_runtime_env`.
        object_store_memory: object store size of a local Ray, in bytes (default: Ray's).
        log_to_driver: stream worker output to this process.
        keep_tensorflow_out_of_rllib: see :data:`NO_RLLIB_TF_ENV_VARS`.

    Raises:
        ConfigError: the cluster needs a token and none was found.
        InvalidInput: local sizing (``num_cpus``, ``object_store_memory``) was given for a cluster.
    """
    global _context
    if ray.is_initialized():
        logger.debug("Ray is already initialised; reusing the connection")
        return _context if _context is not None else ray.init(ignore_reinit_error=True)
    settings = settings or get_settings()
    address = settings.ray_address
    if address:
        _context = _connect_cluster(
            address,
            runtime_env=runtime_env,
            num_cpus=num_cpus,
            object_store_memory=object_store_memory,
            log_to_driver=log_to_driver,
            keep_tensorflow_out_of_rllib=keep_tensorflow_out_of_rllib,
        )
    else:
        cpus = num_cpus if num_cpus is not None else os.cpu_count() or 1
        env = build_runtime_env(
            runtime_env, ship_code=False, keep_tensorflow_out_of_rllib=keep_tensorflow_out_of_rllib
        )
        logger.info("starting a local Ray with %d CPU(s)", cpus)
        _context = ray.init(
            address="local",  # never attach by accident to a Ray started earlier on this machine
            num_cpus=cpus,
            include_dashboard=include_dashboard,
            object_store_memory=object_store_memory,
            log_to_driver=log_to_driver,
            runtime_env=env or None,
        )
    return _context


def _connect_cluster(
    address: str,
    *,
    runtime_env: Mapping[str, Any] | None,
    num_cpus: int | None,
    object_store_memory: int | None,
    log_to_driver: bool,
    keep_tensorflow_out_of_rllib: bool,
) -> BaseContext:
    sizing = {"num_cpus": num_cpus, "object_store_memory": object_store_memory}
    if given := sorted(k for k, v in sizing.items() if v is not None):
        raise InvalidInput(
            f"{', '.join(given)} size a local Ray; RAY_ADDRESS={address} is a cluster"
        )
    token_source = check_token_auth(address)
    if token_source is not None:
        _enable_token_mode()
    env = build_runtime_env(
        runtime_env, ship_code=True, keep_tensorflow_out_of_rllib=keep_tensorflow_out_of_rllib
    )
    logger.info("joining the Ray cluster at %s (token: %s)", address, token_source or "none")
    try:
        return ray.init(address=address, runtime_env=env or None, log_to_driver=log_to_driver)
    except (ConnectionError, RuntimeError) as e:
        if not _refused_for_token(e):
            raise
        if token_source is None:
            raise ConfigError(_missing_token_message(address)) from e
        raise ConfigError(
            f"the Ray cluster at {address} refused the token from {token_source}"
        ) from e


def _refused_for_token(error: BaseException | None) -> bool:
    # Ray wraps the GCS's refusal: ConnectionError <- RuntimeError whose text holds the
    # AuthenticationError's traceback.
    while error is not None:
        if isinstance(error, AuthenticationError) or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def shutdown() -> None:
    """Disconnect from Ray (and stop a local Ray this process started)."""
    global _context
    _context = None
    if ray.is_initialized():
        ray.shutdown()
