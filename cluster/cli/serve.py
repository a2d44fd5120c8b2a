"""``betml serve``: run betml's Serve application (gRPC 9000, HTTP 8000) and look after it."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from betting.errors import ConfigError
from cluster.settings import get_settings

app = typer.Typer(help="Run the Serve application: gRPC and HTTP.", no_args_is_help=True)
console = Console(emoji=False)  # event keys hold ':football:'

CONFIG = typer.Option(Path("configs/serve/local.yaml"), "--config", help="Serve config YAML.")


def _connect_to_cluster(what: str) -> None:
    from cluster.ray_runtime import connect

    settings = get_settings()
    if not settings.ray_address:
        raise ConfigError(
            f"{what} needs a running Ray cluster: set RAY_ADDRESS (e.g. `ray start --head` and "
            "RAY_ADDRESS=auto); without one `betml serve up` runs in the foreground (Ctrl+C)"
        )
    connect(settings)


@app.command("up")
def up(config: Path = CONFIG) -> None:
    """Deploy the config's application; print example calls.

    With RAY_ADDRESS the application stays on that cluster after this command returns. Without
    it a local Ray is started here and the application runs until Ctrl+C.
    """
    from ray import serve as ray_serve

    from cluster.db import get_engine
    from cluster.ray_runtime import connect
    from serve.deploy import (
        deploy,
        example_calls,
        latest_event_key,
        load_serve_config,
        wait_until_deployed,
    )

    deployment = load_serve_config(config)
    settings = get_settings()
    connect(settings)
    names = [a.name for a in deployment.applications]
    with console.status(f"deploying {', '.join(names)} from {config}..."):
        deploy(deployment)
        states = wait_until_deployed(names)
    _print_status()
    failed = {n: s for n, s in states.items() if s != "RUNNING"}
    if failed:
        raise ConfigError(f"application(s) not running: {failed}; see the table above")
    event_key = latest_event_key(get_engine(settings))
    console.print("\nTry it (HealthCheck answers SERVING once the models are loaded):")
    for line in example_calls(deployment, event_key, "1x2"):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    if settings.ray_address:
        console.print(f"\nRunning on {settings.ray_address}; `betml serve down` stops it.")
        return
    console.print("\nRunning on a local Ray owned by this command; Ctrl+C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        ray_serve.shutdown()


def _print_status() -> None:
    from serve.deploy import status_rows

    table = Table(title="Serve applications")
    for column in ("application", "status", "deployment", "deployment status", "replicas"):
        table.add_column(column)
    messages = []
    for row in status_rows():
        table.add_row(row.application, row.status, row.deployment, row.deployment_status,
                      row.replicas)  # fmt: skip
        if row.message:
            messages.append(f"{row.application}/{row.deployment}: {row.message}")
    console.print(table)
    for message in messages:
        console.print(message, highlight=False)


@app.command("status")
def status() -> None:
    """The applications Serve runs on RAY_ADDRESS, their deployments and replicas."""
    _connect_to_cluster("betml serve status")
    _print_status()


@app.command("down")
def down(
    name: str = typer.Option(None, help="Delete only this application (default: stop Serve)."),
) -> None:
    """Stop the application(s) Serve runs on RAY_ADDRESS."""
    from ray import serve as ray_serve

    _connect_to_cluster("betml serve down")
    if name:
        ray_serve.delete(name)
        console.print(f"deleted application {name}")
    else:
        ray_serve.shutdown()
        console.print("Serve stopped")
