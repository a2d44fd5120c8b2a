"""Deploying a Serve config file on a connected Ray: what ``betml serve up|status|down`` call.

:func:`deploy` does what ``serve run <config>`` does (Serve's proxies with the file's HTTP and
gRPC options, then its applications), so the file stays the one description of the deployment
whichever command runs it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError
from ray import serve
from ray.serve.schema import ApplicationStatus, ServeDeploySchema
from sqlalchemy import Engine, select

from betting.errors import ConfigError
from betting.schema import Event
from betting.store import session_scope
from serve.app import GRPC_SERVICER_FUNCTION
from serve.config import ServeArgs

logger = logging.getLogger(__name__)

APP_IMPORT_PATH = "serve.app:build_app"
_DONE = {ApplicationStatus.RUNNING, ApplicationStatus.DEPLOY_FAILED, ApplicationStatus.UNHEALTHY}


def load_serve_config(path: Path) -> ServeDeploySchema:
    """Read and check a Serve config file (and the ``args`` of betml's applications).

    Raises:
        ConfigError: naming the file and the bad field.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"Serve config {path} does not exist") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    try:
        config = ServeDeploySchema.model_validate(raw)
        for app in config.applications:
            if app.import_path == APP_IMPORT_PATH:
                ServeArgs.model_validate(app.args or {})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e
    if GRPC_SERVICER_FUNCTION not in config.grpc_options.grpc_servicer_functions:
        raise ConfigError(
            f"{path}: grpc_options.grpc_servicer_functions must list {GRPC_SERVICER_FUNCTION}"
        )
    return config


def deploy(config: ServeDeploySchema) -> None:
    """Start Serve with the file's proxy options (unless running) and deploy its applications.

    Uses the same calls as Ray's ``serve run`` for a config file.
    """
    from ray.serve._private import api as serve_api
    from ray.serve.config import gRPCOptions

    client = serve_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
        grpc_options=gRPCOptions(**config.grpc_options.model_dump()),
        controller_options=config.controller_options,
    )
    client.deploy_apps(config, _blocking=False)


def wait_until_deployed(names: list[str], timeout_s: float = 300.0) -> dict[str, str]:
    """Wait until every application is RUNNING (or failed); returns status per application."""
    deadline = time.monotonic() + timeout_s
    while True:
        applications = serve.status().applications
        states = {n: applications[n].status if n in applications else None for n in names}
        if all(s in _DONE for s in states.values()) or time.monotonic() > deadline:
            return {n: str(getattr(s, "value", s)) for n, s in states.items()}
        time.sleep(1.0)


@dataclass(frozen=True)
class DeploymentRow:
    """One line of ``betml serve status``."""

    application: str
    status: str
    deployment: str
    deployment_status: str
    replicas: str
    message: str


def status_rows() -> list[DeploymentRow]:
    """Every deployment of every application Serve runs."""
    rows = []
    for app_name, app in serve.status().applications.items():
        for name, deployment in app.deployments.items():
            replicas = ", ".join(f"{n} {state}" for state, n in deployment.replica_states.items())
            rows.append(
                DeploymentRow(
                    app_name,
                    str(app.status.value),
                    name,
                    str(deployment.status.value),
                    replicas,
                    deployment.message or app.message,
                )
            )
    return rows


def latest_event_key(engine: Engine) -> str | None:
    """The latest stored event's key, for example calls (None when the store is empty)."""
    with session_scope(engine) as session:
        return session.scalar(select(Event.key).order_by(Event.starts_at.desc()).limit(1))


def example_calls(config: ServeDeploySchema, event_key: str | None, market_key: str) -> list[str]:
    """grpcurl and curl calls that work against the deployed application."""
    host = config.http_options.host or "127.0.0.1"
    host = "127.0.0.1" if host == "0.0.0.0" else host
    http = f"http://{host}:{config.http_options.port}"
    grpc = f"{host}:{config.grpc_options.port}"
    body = json.dumps({"event_key": event_key or "<event key>", "market_key": market_key})
    key = '-H "x-api-key: $BETML_API_KEY"'
    return [
        f"grpcurl -plaintext {grpc} betml.v1.MLService/HealthCheck",
        f"grpcurl -plaintext {key} -d '{body}' {grpc} betml.v1.MLService/GetPrediction",
        f"curl -s {http}/health/ready",
        f"curl -s -X POST {http}/api/v1/predict/ensemble-prediction "
        f"-H 'content-type: application/json' {key} -d '{body}'",
    ]
