"""Ray Jobs: submit betml commands to a cluster, watch them, stop them.

A job runs ``python -m cluster.cli <command...>`` on the cluster with the repository as its
``working_dir`` (minus :data:`cluster.ray_runtime.JOB_EXCLUDES`), so any ``betml`` command that
works here works there. The Jobs API is the head's dashboard (``http://<head>:8265``); its
address comes from the caller, ``RAY_API_SERVER_ADDRESS``, or ``RAY_ADDRESS`` when that is an
http(s) URL. A cluster with token authentication gets the token as ``Authorization: Bearer``
(from ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``).

Importing this module starts nothing; every call is one or a few HTTP requests. :func:`follow`
blocks: call it from a thread in async code.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from betting.errors import BetmlError, ConfigError, InvalidInput, NotFound
from cluster.ray_runtime import (
    AUTH_MODE_ENV,
    AUTH_TOKEN_ENV,
    AUTH_TOKEN_PATH_ENV,
    build_runtime_env,
    git_commit,
    repo_root,
)

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient

logger = logging.getLogger(__name__)

API_SERVER_ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"
RAY_ADDRESS_ENV = "RAY_ADDRESS"

#: Top-level ``betml`` commands a job may run. ``serve``, ``submit`` and ``jobs`` stay out:
#: they manage the cluster from outside it.
JOB_COMMANDS = frozenset({"data", "train", "sweep", "models", "backtest", "predict"})

#: Commands whose driver only orchestrates Ray tasks that reserve their own CPUs; every other
#: command does its work in the driver, which then reserves one CPU.
ORCHESTRATING_COMMANDS = frozenset({"sweep"})

#: Job states Ray reports; the last three are final.
PENDING = "PENDING"
RUNNING = "RUNNING"
STOPPED = "STOPPED"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TERMINAL_STATES = frozenset({STOPPED, SUCCEEDED, FAILED})

#: Log lines kept in the record of a failed job.
LOG_TAIL_LINES = 20

#: The pinned environment a ``pip`` runtime env installs (on top of the cluster's own packages).
PINNED_REQUIREMENTS = "constraints.txt"

_SLUG = re.compile(r"[^a-z0-9]+")
_ENV_LOCK = threading.Lock()


class JobsApiError(BetmlError):
    """The cluster's Jobs API failed a request for a reason other than a bad id or token."""


@dataclass(frozen=True)
class JobRecord:
    """What the cluster knows of one job."""

    submission_id: str
    status: str
    """``PENDING``, ``RUNNING``, ``STOPPED``, ``SUCCEEDED`` or ``FAILED``."""
    entrypoint: str
    message: str | None = None
    """Ray's one-line account of the state; for a failed job, why."""
    start_time: datetime | None = None
    end_time: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    """``command``, ``user``, ``git_commit`` and whatever the submitter added."""
    exit_code: int | None = None
    """The entrypoint's exit code, once Ray reports it."""
    error_type: str | None = None
    log_tail: str | None = None
    """The last :data:`LOG_TAIL_LINES` log lines of a failed job (from :func:`status`)."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def command(self) -> str:
        """The betml command the job runs (from its metadata, else its entrypoint)."""
        return self.metadata.get("command") or self.entrypoint

    @property
    def duration_s(self) -> float | None:
        if self.start_time is None:
            return None
        end = self.end_time or datetime.now(UTC)
        return (end - self.start_time).total_seconds()


# --- address and token -------------------------------------------------------------------


def resolve_address(address: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The Jobs API URL: ``address``, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS`` when
    it is an http(s) URL.

    Raises:
        ConfigError: none is set (the message says what to set).
        InvalidInput: the chosen address is not an http(s) URL.
    """
    environ = os.environ if environ is None else environ
    source = "address"
    if not address:
        if env_value := environ.get(API_SERVER_ADDRESS_ENV, "").strip():
            address, source = env_value, API_SERVER_ADDRESS_ENV
        elif _is_http(ray_address := environ.get(RAY_ADDRESS_ENV, "").strip()):
            address, source = ray_address, RAY_ADDRESS_ENV
    if not address:
        raise ConfigError(
            "no Ray Jobs address: pass --address or set RAY_API_SERVER_ADDRESS to the head's "
            "dashboard URL, e.g. http://127.0.0.1:8265 (RAY_ADDRESS works too when it is an "
            "http(s) URL)"
        )
    if not _is_http(address):
        raise InvalidInput(
            f"{source}={address!r} is not the Jobs API: give the head's dashboard URL, "
            "e.g. http://<head>:8265"
        )
    return address.rstrip("/")


def _is_http(address: str) -> bool:
    return address.startswith(("http://", "https://"))


def read_auth_token(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> tuple[str, str] | None:
    """The cluster token and where it came from, in Ray's order, or None.

    ``RAY_AUTH_MODE=disabled`` sends no token.

    Raises:
        ConfigError: ``RAY_AUTH_TOKEN_PATH`` names a missing or empty file.
    """
    environ = os.environ if environ is None else environ
    if environ.get(AUTH_MODE_ENV, "").strip().lower() == "disabled":
        return None
    if token := environ.get(AUTH_TOKEN_ENV, "").strip():
        return token, AUTH_TOKEN_ENV
    if path_text := environ.get(AUTH_TOKEN_PATH_ENV, "").strip():
        path = Path(path_text).expanduser()
        token = path.read_text().strip() if path.is_file() else ""
        if not token:
            raise ConfigError(
                f"{AUTH_TOKEN_PATH_ENV}={path_text} names no token file (or an empty one)"
            )
        return token, f"{AUTH_TOKEN_PATH_ENV}={path_text}"
    default = (Path.home() if home is None else home) / ".ray" / "auth_token"
    if default.is_file() and (token := default.read_text().strip()):
        return token, str(default)
    return None


def _client(address: str | None) -> JobSubmissionClient:
    """A Jobs API client for ``address`` that sends the token; checks the token on the way."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    found = read_auth_token()
    headers = {"Authorization": f"Bearer {found[0]}"} if found else {}
    try:
        # Ray lets RAY_API_SERVER_ADDRESS/RAY_ADDRESS override the address it is given; the
        # address resolved above already took them into account.
        with _ENV_LOCK, _hidden_env(API_SERVER_ADDRESS_ENV, RAY_ADDRESS_ENV):
            return JobSubmissionClient(url, headers=headers)
    except AuthenticationError as e:
        if found is None:
            raise ConfigError(
                f"the Ray cluster at {url} requires a token and none was found: set "
                f"{AUTH_TOKEN_ENV}, point {AUTH_TOKEN_PATH_ENV} at a token file, or put it in "
                "~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
            ) from e
        raise ConfigError(f"the Ray cluster at {url} refused the token from {found[1]}") from e
    except ConnectionError as e:
        raise ConfigError(
            f"no Ray Jobs API answers at {url}: is the head running, with its dashboard on "
            "that port (8265 unless --dashboard-port says otherwise)?"
        ) from e


@contextmanager
def _hidden_env(*names: str) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _api_errors(submission_id: str) -> Iterator[None]:
    """Ray's RuntimeErrors as betml errors: an unknown id is NotFound."""
    try:
        yield
    except RuntimeError as e:
        if "status code 404" in str(e) or "does not exist" in str(e):
            raise NotFound(f"no job {submission_id!r} on this cluster") from e
        raise JobsApiError(f"the Jobs API failed for job {submission_id!r}: {e}") from e


# --- submitting --------------------------------------------------------------------------


def check_command(command: Sequence[str]) -> list[str]:
    """The command as a list, refused when it is empty or not a :data:`JOB_COMMANDS` command."""
    args = [str(a) for a in command]
    if not args:
        raise InvalidInput("no betml command to submit, e.g. `sweep ensemble --config ...`")
    if args[0] not in JOB_COMMANDS:
        raise InvalidInput(
            f"betml {args[0]!r} cannot run as a job; one of: {', '.join(sorted(JOB_COMMANDS))}"
        )
    return args


def entrypoint_for(command: Sequence[str]) -> str:
    """The shell command a job runs: betml's CLI through the cluster's ``python``."""
    return shlex.join(["python", "-m", "cluster.cli", *command])


def new_submission_id(
    command: Sequence[str], name: str | None = None, now: datetime | None = None
) -> str:
    """A readable, unique id: ``betml-sweep-ensemble-20261123-142501-a3f9`` (UTC time).

    Raises:
        InvalidInput: ``name`` has no letter or digit.
    """
    if name is not None:
        label = _SLUG.sub("-", name.lower()).strip("-")
        if not label:
            raise InvalidInput(f"job name {name!r} needs a letter or a digit")
    else:
        words: list[str] = []
        for arg in command:
            if arg.startswith("-") or len(words) == 2:
                break
            words.append(arg)
        label = _SLUG.sub("-", "-".join(words).lower()).strip("-") or "job"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"betml-{label[:40].rstrip('-')}-{stamp}-{secrets.token_hex(2)}"


def pinned_requirements() -> list[str]:
    """The pinned packages of :data:`PINNED_REQUIREMENTS`, for a ``pip`` runtime env."""
    lines = (repo_root() / PINNED_REQUIREMENTS).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def job_runtime_env(
    env_vars: Mapping[str, str] | None = None, *, pip: bool | Sequence[str] = False
) -> dict[str, Any]:
    """The runtime env of a betml job: the repository as ``working_dir``, betml's worker
    variables plus ``env_vars``, and optionally a ``pip`` env (``True``: the pinned
    requirements; a list: those packages). The cluster's Python already has betml's packages
    in the images of ``cluster/deploy``; a pip env adds a virtualenv per job on top of them."""
    extra: dict[str, Any] = {"env_vars": dict(env_vars or {})}
    if pip:
        packages = pinned_requirements() if pip is True else list(pip)  # type: ignore[arg-type]
        extra["pip"] = {"packages": packages, "pip_check": False}
    # environ={}: ship the code even when called from inside another job.
    return build_runtime_env(extra, ship_code=True, environ={})


def submit(
    command: Sequence[str],
    *,
    address: str | None = None,
    wait: bool = False,
    submission_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, str] | None = None,
    entrypoint_num_cpus: float | None = None,
    env_vars: Mapping[str, str] | None = None,
    pip: bool | Sequence[str] = False,
    timeout_s: float | None = None,
) -> JobRecord:
    """Submit ``betml <command...>`` as a Ray job.

    Args:
        command: the betml command and its arguments, e.g. ``["sweep", "ensemble", "--config",
            "configs/sweeps/lightgbm.yaml"]``; the first word must be in :data:`JOB_COMMANDS`.
        address: the Jobs API URL (see :func:`resolve_address`).
        wait: block until the job ends (see :func:`wait_for`).
        submission_id: the job's id; default :func:`new_submission_id`.
        name: label of the default id instead of the command's first words.
        metadata: extra metadata, beside ``command``, ``user`` and ``git_commit``.
        entrypoint_num_cpus: CPUs reserved for the driver; default 0 for
            :data:`ORCHESTRATING_COMMANDS`, 1 otherwise.
        env_vars: environment of the job's processes (e.g. ``DATABASE_URL``).
        pip: a ``pip`` runtime env (see :func:`job_runtime_env`).
        timeout_s: with ``wait``, give up waiting after this long.

    Raises:
        InvalidInput: the command cannot run as a job.
        ConfigError: no address, or the cluster refused the token.
        JobsApiError: the cluster refused the job (e.g. the id is taken).
    """
    args = check_command(command)
    client = _client(address)
    submission_id = submission_id or new_submission_id(args, name)
    meta = {"command": shlex.join(args), "user": _user(), "git_commit": git_commit()}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    if entrypoint_num_cpus is None:
        entrypoint_num_cpus = 0.0 if args[0] in ORCHESTRATING_COMMANDS else 1.0
    with _api_errors(submission_id):
        client.submit_job(
            entrypoint=entrypoint_for(args),
            submission_id=submission_id,
            runtime_env=job_runtime_env(env_vars, pip=pip),
            metadata=meta,
            entrypoint_num_cpus=entrypoint_num_cpus,
        )
    logger.info("submitted job %s: betml %s", submission_id, meta["command"])
    if wait:
        return wait_for(submission_id, address=address, timeout_s=timeout_s)
    return status(submission_id, address=address)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- watching ----------------------------------------------------------------------------


def _record(details: JobDetails, log_tail: str | None = None) -> JobRecord:
    return JobRecord(
        submission_id=details.submission_id or details.job_id or "",
        status=str(details.status),
        entrypoint=details.entrypoint,
        message=details.message,
        start_time=_from_ms(details.start_time),
        end_time=_from_ms(details.end_time),
        metadata=dict(details.metadata or {}),
        exit_code=details.driver_exit_code,
        error_type=str(details.error_type) if details.error_type else None,
        log_tail=log_tail,
    )


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def status(submission_id: str, *, address: str | None = None) -> JobRecord:
    """The job's state; a failed job's record carries its last log lines.

    Raises:
        NotFound: the cluster has no such job.
    """
    client = _client(address)
    with _api_errors(submission_id):
        details = client.get_job_info(submission_id)
        tail = None
        if str(details.status) == FAILED:
            lines = client.get_job_logs(submission_id).splitlines()
            tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return _record(details, tail)


def list_jobs(*, address: str | None = None) -> list[JobRecord]:
    """Every submitted job the cluster remembers, newest first."""
    client = _client(address)
    with _api_errors("*"):
        jobs = [d for d in client.list_jobs() if d.submission_id]
    records = [_record(d) for d in jobs]
    never = datetime.max.replace(tzinfo=UTC)
    return sorted(records, key=lambda r: r.start_time or never, reverse=True)


def logs(submission_id: str, *, address: str | None = None) -> str:
    """Everything the job has logged so far."""
    client = _client(address)
    with _api_errors(submission_id):
        return client.get_job_logs(submission_id)


def follow(submission_id: str, *, address: str | None = None) -> Iterator[str]:
    """The job's log as it grows, in chunks, from the start until the job ends.

    Blocks between chunks (it runs its own event loop): from async code, iterate it in a thread.
    """
    client = _client(address)
    with _api_errors(submission_id):
        client.get_job_info(submission_id)  # a clear NotFound before opening the websocket
    loop = asyncio.new_event_loop()
    chunks = cast(AsyncGenerator[str, None], client.tail_job_logs(submission_id))
    try:
        while True:
            try:
                with _api_errors(submission_id):
                    chunk = loop.run_until_complete(anext(chunks))
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        loop.run_until_complete(chunks.aclose())
        loop.close()


def wait_for(
    submission_id: str,
    *,
    address: str | None = None,
    timeout_s: float | None = None,
    poll_s: float = 1.0,
) -> JobRecord:
    """Poll until the job ends; return its final record.

    Raises:
        TimeoutError: still running after ``timeout_s``.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        record = status(submission_id, address=address)
        if record.terminal:
            return record
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {submission_id} still {record.status} after {timeout_s}s")
        time.sleep(poll_s)


def stop(
    submission_id: str,
    *,
    address: str | None = None,
    wait: bool = True,
    timeout_s: float | None = 60.0,
) -> JobRecord:
    """Ask the job to stop (SIGTERM, then SIGKILL after Ray's grace period).

    Args:
        wait: return once the job has ended (``STOPPED``, or whatever state it ended in).
        timeout_s: with ``wait``, give up after this long.
    """
    client = _client(address)
    with _api_errors(submission_id):
        stopping = client.stop_job(submission_id)
    logger.info("stop requested for job %s (was running: %s)", submission_id, stopping)
    if wait:
        return wait_for(submission_id, address=address, timeout_s=timeout_s)
    return status(submission_id, address=address)
