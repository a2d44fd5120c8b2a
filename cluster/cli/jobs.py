"""``betml submit`` and ``betml jobs``: run betml commands as Ray jobs on a cluster."""

from __future__ import annotations

import logging
import sys
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from betting.errors import InvalidInput
from cluster import jobs
from cluster.jobs import JobRecord

app = typer.Typer(help="List, inspect, follow and stop Ray jobs.", no_args_is_help=True)
console = Console()

#: ``submit`` takes everything after its own options as the betml command, with or without ``--``.
SUBMIT_CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}

ADDRESS = typer.Option(
    None,
    "--address",
    help="Jobs API of the cluster, e.g. http://127.0.0.1:8265 "
    "(default: RAY_API_SERVER_ADDRESS, or RAY_ADDRESS when it is an http(s) URL).",
)

_STYLES = {
    jobs.SUCCEEDED: "green",
    jobs.FAILED: "bold red",
    jobs.STOPPED: "yellow",
    jobs.RUNNING: "cyan",
    jobs.PENDING: "dim",
}


#: Ray's client-side loggers that narrate every upload and websocket close at INFO.
_CHATTY_RAY_LOGGERS = (
    "ray.dashboard.modules.dashboard_sdk",
    "ray.dashboard.modules.job.sdk",
    "ray._private.runtime_env.packaging",
    "ray._private.runtime_env.working_dir",
)


def _quiet_ray() -> None:
    import ray.job_submission  # noqa: F401  (its module sets its logger to INFO on import)

    for name in _CHATTY_RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def parse_command(command: list[str]) -> None:
    """Parse ``betml <command...>`` as the CLI would, without running it.

    Raises:
        InvalidInput: not a job command, an unknown subcommand, or arguments the command refuses.
    """
    from cluster.cli import app as betml_app

    args = jobs.check_command(command)
    cmd = typer.main.get_command(betml_app)
    ctx = typer.Context(cmd, info_name="betml")
    path = ["betml"]
    while isinstance(cmd, TyperGroup):
        choices = ", ".join(cmd.list_commands(ctx))
        if not args or args[0].startswith("-"):
            raise InvalidInput(f"`{' '.join(path)}` needs a subcommand: one of {choices}")
        name = args.pop(0)
        sub = cmd.get_command(ctx, name)
        if sub is None:
            raise InvalidInput(f"`{' '.join(path)}` has no command {name!r}; one of {choices}")
        path.append(name)
        cmd, ctx = sub, typer.Context(sub, info_name=name, parent=ctx)
    try:
        cmd.make_context(path[-1], args, parent=ctx.parent).close()
    except typer.Exit:  # --help: nothing to refuse
        pass
    except typer.TyperException as e:
        raise InvalidInput(f"`{' '.join(path)}`: {e.format_message()}") from e


def submit(
    command: list[str] = typer.Argument(
        ..., metavar="COMMAND...", help="The betml command to run, e.g. sweep ensemble --config ..."
    ),
    address: str | None = ADDRESS,
    wait: bool = typer.Option(
        False, "--wait", help="Follow the job's log; exit 0 if it succeeds, 1 if not."
    ),
    cpus: float | None = typer.Option(
        None, "--cpus", min=0, help="CPUs reserved for the driver (default: 0 for sweeps, else 1)."
    ),
    name: str | None = typer.Option(None, "--name", help="Label of the job id (default: command)."),
    env: list[str] = typer.Option(
        [], "--env", metavar="KEY=VALUE", help="Environment of the job (repeatable)."
    ),
    pip: bool = typer.Option(
        False, "--pip", help="Install the pinned requirements in a per-job virtualenv."
    ),
) -> None:
    """Submit a betml command to a Ray cluster as a job: betml submit -- sweep ensemble ..."""
    parse_command(command)
    env_vars = _env_pairs(env)
    _quiet_ray()
    record = jobs.submit(
        command, address=address, name=name, entrypoint_num_cpus=cpus, env_vars=env_vars, pip=pip
    )
    console.print(
        f"submitted [bold]{record.submission_id}[/]: betml {record.command}", highlight=False
    )
    if not wait:
        console.print(f"follow it with: betml jobs logs --follow {record.submission_id}")
        return
    _stream(record.submission_id, address)
    _finish(jobs.status(record.submission_id, address=address))


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env_vars = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env {pair!r} is not KEY=VALUE")
        env_vars[key] = value
    return env_vars


def _stream(submission_id: str, address: str | None) -> None:
    for chunk in jobs.follow(submission_id, address=address):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def _finish(record: JobRecord) -> None:
    """Print the job's outcome after its log; exit 1 unless it succeeded."""
    console.print(_status_text(record))
    if not record.succeeded:
        if record.message and record.status != jobs.FAILED:  # a failure's message repeats the log
            console.print(record.message, highlight=False)
        raise typer.Exit(1)


def _status_text(record: JobRecord) -> Text:
    text = Text(f"{record.submission_id}: ")
    text.append(record.status, style=_STYLES.get(record.status, ""))
    if record.exit_code is not None:
        text.append(f" (exit code {record.exit_code})")
    if record.duration_s is not None:
        text.append(f" after {record.duration_s:.0f}s")
    return text


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@app.command("list")
def list_command(address: str | None = ADDRESS) -> None:
    """The cluster's jobs, newest first."""
    _quiet_ray()
    records = jobs.list_jobs(address=address)
    table = Table(title=f"{len(records)} job(s)", title_justify="left")
    table.add_column("submission id", overflow="fold", min_width=20)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("command", overflow="fold", min_width=20)
    table.add_column("started", min_width=10)
    for column in ("duration", "exit"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in records:
        table.add_row(
            r.submission_id,
            Text(r.status, style=_STYLES.get(r.status, "")),
            r.command,
            _when(r.start_time),
            f"{r.duration_s:.0f}s" if r.duration_s is not None else "-",
            "-" if r.exit_code is None else str(r.exit_code),
        )
    console.print(table)


@app.command("status")
def status_command(submission_id: str, address: str | None = ADDRESS) -> None:
    """One job: state, command, times, exit code; a failed job's last log lines."""
    _quiet_ray()
    r = jobs.status(submission_id, address=address)
    table = Table(show_header=False, title=submission_id, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("status", Text(r.status, style=_STYLES.get(r.status, "")))
    table.add_row("command", f"betml {r.command}")
    table.add_row("entrypoint", r.entrypoint)
    table.add_row("started", _when(r.start_time))
    table.add_row("ended", _when(r.end_time))
    table.add_row("exit code", "-" if r.exit_code is None else str(r.exit_code))
    for key in ("user", "git_commit"):
        table.add_row(key.replace("_", " "), r.metadata.get(key, "-"))
    if r.status != jobs.FAILED and r.message:
        table.add_row("message", r.message)
    console.print(table)
    if r.log_tail:
        console.print(f"last {jobs.LOG_TAIL_LINES} log lines:", style="bold red")
        console.print(r.log_tail, highlight=False, markup=False)


@app.command("logs")
def logs_command(
    submission_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    address: str | None = ADDRESS,
) -> None:
    """A job's log; with --follow, until the job ends (exit 1 unless it succeeded)."""
    _quiet_ray()
    if not follow:
        sys.stdout.write(jobs.logs(submission_id, address=address))
        return
    _stream(submission_id, address)
    _finish(jobs.status(submission_id, address=address))


@app.command("stop")
def stop_command(
    submission_id: str,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until it has stopped."),
    address: str | None = ADDRESS,
) -> None:
    """Stop a running job."""
    _quiet_ray()
    record = jobs.stop(submission_id, address=address, wait=wait)
    console.print(_status_text(record))
