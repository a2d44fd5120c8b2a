"""A real Ray head node for tests: ``ray start --head --block`` on free ports with token auth.

The head runs in its own process group with its own ``--temp-dir``, so a test stops exactly this
head (and the processes it started) and never touches another Ray on the machine: ``ray stop``
would kill them all.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

#: ``ray start``'s ports that would otherwise default to fixed numbers shared by every Ray here.
_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--metrics-export-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
)


@dataclass(frozen=True)
class RayHead:
    """A running head node."""

    gcs_address: str
    """``host:port`` of its GCS, for ``ray.init(address=...)``."""
    dashboard_url: str
    """``http://host:port`` of its dashboard, the Ray Jobs API."""
    token: str
    """Its authentication token (``RAY_AUTH_MODE=token``)."""
    temp_dir: Path
    """Its ``--temp-dir``: sessions, logs, job logs."""
    process: subprocess.Popen[bytes]
    """``ray start --block``, leader of the head's process group."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on 127.0.0.1 at the time of the call."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _ray_executable() -> str:
    return str(Path(sys.executable).with_name("ray"))


@contextmanager
def ray_head(num_cpus: int = 2, timeout_s: float = 90.0) -> Iterator[RayHead]:
    """Start a head with token auth, yield it once its Jobs API answers, then stop it.

    The head's environment puts this interpreter's ``bin`` first on ``PATH`` (so a job's
    ``python`` is this environment's, as on a cluster whose image carries betml's environment)
    and sets ``RAY_AUTH_MODE=token`` with a fresh ``RAY_AUTH_TOKEN`` (``~/.ray`` is not touched).
    """
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    temp_dir = Path(tempfile.mkdtemp(prefix="rh-", dir="/tmp"))  # short: Unix socket paths
    token = secrets.token_hex(32)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
    }
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    command = [
        _ray_executable(), "start", "--head", "--block", "--disable-usage-stats",
        f"--num-cpus={num_cpus}", "--num-gpus=0", "--node-ip-address=127.0.0.1",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--temp-dir={temp_dir}",
        f"--object-store-memory={200 * 1024 * 1024}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]  # fmt: skip
    log = (temp_dir / "ray-start.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    head = RayHead(
        gcs_address=f"127.0.0.1:{ports['--port']}",
        dashboard_url=f"http://127.0.0.1:{ports['--dashboard-port']}",
        token=token,
        temp_dir=temp_dir,
        process=process,
    )
    try:
        _wait_for_jobs_api(head, timeout_s)
        yield head
    finally:
        stop_head(head)
        log.close()


def _wait_for_jobs_api(head: RayHead, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {head.token}"}
    while time.monotonic() < deadline:
        if head.process.poll() is not None:
            raise RuntimeError(f"ray start exited: {_tail(head.temp_dir / 'ray-start.log')}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{head.dashboard_url}/api/jobs/", headers=headers).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(
        f"no Jobs API at {head.dashboard_url} after {timeout_s:.0f}s: "
        f"{_tail(head.temp_dir / 'ray-start.log')}"
    )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_head(head: RayHead, grace_s: float = 5.0) -> None:
    """Stop the head's process group, then any process still running from its temp dir, then
    remove the temp dir.

    Ray puts workers and job drivers in process groups of their own; they are found by the
    head's ``--temp-dir`` on their command line and killed by pid.
    """
    with suppress(ProcessLookupError):
        os.killpg(head.process.pid, signal.SIGTERM)
    try:
        head.process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(head.process.pid, signal.SIGKILL)
        head.process.wait(timeout=grace_s)
    for pid in _pids_of(head):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(head.temp_dir, ignore_errors=True)


def _pids_of(head: RayHead) -> list[int]:
    marker = str(head.temp_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found
