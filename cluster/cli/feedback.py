"""``betml feedback``: where the feedback loop stands, and a retraining on demand."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from betting.errors import ConfigError
from betting.monitoring import live_scores
from betting.store import session_scope
from cluster import jobs, tracking
from cluster.db import get_engine
from cluster.retraining import (
    Decision,
    LoopState,
    RetrainPolicy,
    decide,
    loop_state,
    stored_feedback_runs,
    submit_retraining,
)
from cluster.settings import get_settings

app = typer.Typer(help="The feedback loop: stored backtests, live scores, retraining.",
                  no_args_is_help=True)  # fmt: skip
console = Console(emoji=False)

CONFIG = typer.Option(
    Path("configs/serve/local.yaml"), "--config",
    help="Serve config whose betml application's args.retraining is the policy.",
)  # fmt: skip
ADDRESS = typer.Option(
    None, "--address", help="Jobs API of the cluster (default RAY_API_SERVER_ADDRESS)."
)


def load_policy(path: Path) -> RetrainPolicy:
    """``args.retraining`` of the betml application of a Serve config file."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"Serve config {path} does not exist") from e
    for application in raw.get("applications") or []:
        if application.get("import_path") == "serve.app:build_app":
            policy = (application.get("args") or {}).get("retraining")
            if policy is None:
                raise ConfigError(f"{path}: the betml application has no args.retraining")
            return RetrainPolicy.model_validate(policy)
    raise ConfigError(f"{path} has no application with import_path serve.app:build_app")


def current_state(policy: RetrainPolicy, address: str | None) -> LoopState:
    """The triggers' inputs: the store, the cluster's jobs, the registry and live scores."""
    settings = get_settings()
    with session_scope(get_engine(settings)) as session:
        runs = stored_feedback_runs(session)
        scores = live_scores(session) if policy.model else None
    return loop_state(
        policy, feedback_runs=runs, records=jobs.list_jobs(address=address),
        client=tracking.configure_mlflow(settings), scores=scores,
    )  # fmt: skip


@app.command("status")
def status(config: Path = CONFIG, address: str | None = ADDRESS) -> None:
    """The policy, the stored feedback, the last retraining and whether one is due."""
    policy = load_policy(config)
    state = current_state(policy, address)
    decision = decide(policy, state)
    table = Table(title="feedback loop", show_header=False)
    table.add_row("policy", "on" if policy.enabled else "off")
    table.add_row("retraining runs", f"betml {' '.join(policy.training.command())}")
    triggers = [f"every {policy.every_feedback} backtest runs" if policy.every_feedback else "",
                f"every {policy.every_hours} h" if policy.every_hours else "",
                f"live log loss of {policy.model} > holdout + {policy.max_log_loss_increase} "
                f"(>= {policy.min_settled_markets} settled markets)"
                if policy.model and policy.max_log_loss_increase else ""]  # fmt: skip
    table.add_row("triggers", "; ".join(t for t in triggers if t) or "none")
    table.add_row("stored backtest runs", str(state.feedback_runs))
    last = state.last
    described = "none"
    if last is not None:
        described = f"{last.job_id} {last.status} (submitted at {last.feedback_runs} runs)"
    table.add_row("last retraining", described)
    if policy.model:
        live = "-" if state.live_log_loss is None else f"{state.live_log_loss:.4f}"
        holdout = "-" if state.holdout_log_loss is None else f"{state.holdout_log_loss:.4f}"
        table.add_row("live / holdout log loss",
                      f"{live} over {state.live_markets} settled markets / {holdout}")  # fmt: skip
    table.add_row("due", f"{'yes' if decision.due else 'no'}: {decision.reason}")
    console.print(table)


@app.command("retrain")
def retrain(
    config: Path = CONFIG,
    address: str | None = ADDRESS,
    wait: bool = typer.Option(False, "--wait", help="Follow the job's log until it ends."),
) -> None:
    """Submit the policy's retraining job now, whatever the triggers say."""
    policy = load_policy(config)
    state = current_state(policy, address)
    decision = Decision(True, "asked for with betml feedback retrain", "manual")
    record = submit_retraining(policy, decision, state, address=address)
    assert record is not None  # a manual job gets a fresh id
    console.print(f"submitted {record.submission_id}: betml {record.command}")
    if wait:
        for chunk in jobs.follow(record.submission_id, address=address):
            console.out(chunk, end="", highlight=False)
        final = jobs.status(record.submission_id, address=address)
        console.print(f"{final.submission_id}: {final.status}")
        if not final.succeeded:
            raise typer.Exit(1)
