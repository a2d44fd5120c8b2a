"""``betml train dqn`` and ``betml sweep dqn``: the staking agent on the Ray cluster, with a live
trial table (iteration, env steps, episode return, holdout ROI and log growth)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cluster import tracking
from cluster.cli.models import console
from cluster.cli.sweep import LIVE_ROWS, LiveTrialTable, _finite, _fmt
from cluster.configs import load_config
from rl import config as names
from rl.config import AgentConfig

DEFAULT_CONFIG = Path("configs/rl/dqn.yaml")
#: Live table columns: (header, metric).
COLUMNS = [
    ("env steps", names.TRAIN_ENV_STEPS),
    ("steps/s", names.TRAIN_ENV_STEPS_PER_S),
    ("return", names.TRAIN_EPISODE_RETURN),
    ("eval ROI", names.EVAL_ROI),
    ("eval log growth", names.EVAL_LOG_GROWTH),
    ("flat log growth", names.EVAL_FLAT_LOG_GROWTH),
]


class AgentProgress(LiveTrialTable):
    """The agent's trials with their iterations and holdout numbers, best holdout log growth on
    top (the DQN counterpart of :class:`cluster.cli.sweep.SweepProgress`)."""

    def __init__(self, space: list[str], iterations: int, trials: int) -> None:
        super().__init__(space, iterations, trials)

    def record(self, row: dict[str, Any], result: dict[str, Any]) -> None:
        row.update({metric: result.get(metric) for _, metric in COLUMNS})
        row["progress"] = result.get(names.TRAIN_ITERATION, 0)

    def render(self) -> Group:
        growth = names.EVAL_LOG_GROWTH
        scored = [r for r in self.rows.values() if _finite(r.get(growth))]
        best = max(scored, key=lambda r: r[growth]) if scored else None
        done = sum(r["status"] in ("done", "stopped", "error") for r in self.rows.values())
        table = Table(
            title=f"trials {done}/{self.trials} done, {len(self.rows) - done} running, "
            f"{time.monotonic() - self.started:.0f}s",
            title_justify="left",
        )
        table.add_column("trial")
        for name in self.space:
            table.add_column(name.rsplit(".", 1)[-1], justify="right")
        table.add_column("iteration", justify="right")
        for header, _ in COLUMNS:
            table.add_column(header, justify="right")
        table.add_column("status", justify="right")
        ordered = sorted(
            self.rows.items(),
            key=lambda kv: (kv[1]["status"] != "running", -_or_inf(kv[1].get(growth))),
        )
        for trial_id, row in ordered[:LIVE_ROWS]:
            table.add_row(
                trial_id,
                *(_fmt(row["params"][k]) for k in self.space),
                f"{row.get('progress', 0)}/{self.total}",
                *(_cell(metric, row.get(metric)) for _, metric in COLUMNS),
                row["status"],
                style="bold green" if row is best else None,
            )
        headline = (
            Text(f"best holdout log growth so far: {best[growth]:.4f}", style="bold green")
            if best
            else Text("waiting for the first evaluation...")
        )
        return Group(headline, table)


def _cell(metric: str, value: Any) -> str:
    counts = (names.TRAIN_ENV_STEPS, names.TRAIN_ENV_STEPS_PER_S)
    return f"{value:.0f}" if metric in counts and _finite(value) else _fmt(value)


def _or_inf(value: Any) -> float:
    return float(value) if _finite(value) else -math.inf


def holdout_table(evaluation: dict[str, float], title: str) -> Table:
    """The agent's holdout numbers next to flat value betting and no bets at all."""
    table = Table(title=title)
    for col in ("", "log growth", "ROI", "bets", "max drawdown"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row(
        "agent (greedy)",
        _fmt(evaluation.get(names.EVAL_LOG_GROWTH)),
        _fmt(evaluation.get(names.EVAL_ROI)),
        f"{evaluation.get(names.EVAL_BETS, 0):.0f}",
        _fmt(evaluation.get(names.EVAL_MAX_DRAWDOWN)),
    )
    table.add_row("flat value betting", _fmt(evaluation.get(names.EVAL_FLAT_LOG_GROWTH)),
                  "-", "-", "-")  # fmt: skip
    table.add_row("no bets", "0", "-", "0", "0")
    return table


def agent_command(config_path: Path, *, sweep: bool, trials: int | None, resume: bool,
                  promote: bool) -> Any:  # fmt: skip
    """Train (or sweep) the agent from the CLI: live table, then its holdout table."""
    from cluster.ray_runtime import connect
    from rl.train import keep_tensorflow_out, run

    config = load_config(config_path, AgentConfig)
    if sweep and not config.space:
        raise typer.BadParameter(f"{config_path} has no `space` to search")
    keep_tensorflow_out()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's reporter would draw over ours
    connect(log_to_driver=False)
    space = list(config.space or {}) if sweep else []
    count = (trials or config.trials) if sweep else 1
    console.print(
        f"{'sweep' if sweep else 'run'} [bold]{config.resolved_run_name(sweep=sweep)}[/]: "
        f"{count} trial(s) of {config.iterations} iteration(s) on the Ray cluster"
        + (" (resuming)" if resume else "")
    )
    progress = AgentProgress(space, config.iterations, count)
    outcome = run(config, sweep=sweep, trials=trials, resume=resume, callbacks=[progress],
                  verbose=0)  # fmt: skip
    if outcome.best_params:
        console.print(
            "best: " + ", ".join(f"{k}={_fmt(v)}" for k, v in outcome.best_params.items())
        )
    console.print(holdout_table(outcome.evaluation, f"holdout: {outcome.model_name}"))
    registered = (
        f", registered as version {outcome.version} (challenger)" if outcome.version else ""
    )
    console.print(f"MLflow run {outcome.run_id}{registered}; policy {outcome.artifact}")
    if promote and outcome.version and outcome.model_name:
        console.print(tracking.promote(outcome.model_name).reason)
    return outcome


_CONFIG = typer.Option(DEFAULT_CONFIG, "--config", help="Agent config YAML.")
_RESUME = typer.Option(False, "--resume", help="Continue the interrupted run of this config.")
_PROMOTE = typer.Option(False, "--promote", help="Run the promotion gate on the challenger.")
_TRIALS = typer.Option(None, "--trials", min=1, help="Configurations to try (default: config).")


def train_dqn(config: Path = _CONFIG, resume: bool = _RESUME, promote: bool = _PROMOTE) -> None:
    """Train the DQN staking agent (one trial), export and register its policy."""
    agent_command(config, sweep=False, trials=None, resume=resume, promote=promote)


def sweep_dqn(
    config: Path = _CONFIG,
    trials: int | None = _TRIALS,
    resume: bool = _RESUME,
    promote: bool = _PROMOTE,
) -> None:
    """Sweep the DQN's learning rate, n-step and target update; register the best policy."""
    agent_command(config, sweep=True, trials=trials, resume=resume, promote=promote)


def add_commands(train_app: typer.Typer, sweep_app: typer.Typer) -> None:
    """Register ``betml train dqn`` and ``betml sweep dqn``."""
    train_app.command("dqn")(train_dqn)
    sweep_app.command("dqn")(sweep_dqn)
