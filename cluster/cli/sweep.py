"""``betml sweep``: tune a family on the Ray cluster with a live trial table."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import typer
from ray.tune import Callback
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cluster.cli.models import console, report_table
from cluster.configs import load_config
from cluster.sweeps import METRIC, METRIC_FOLDS_DONE, SweepConfig, SweepOutcome
from cluster.sweeps import run as run_sweep

app = typer.Typer(
    help="Tune a model family's hyperparameters on the Ray cluster, then refit and register "
    "the best configuration.",
    no_args_is_help=True,
)

#: Rows of the live table: the best trials and the running ones, at most this many.
LIVE_ROWS = 12


class LiveTrialTable(Callback):
    """A Rich table of a Tune run's trials that refreshes as they report.

    Tune keeps its callbacks with a sweep's state, so a resumed sweep draws the table again:
    the live display is built lazily and left out when the callback is pickled. Subclasses say
    what a result adds to a trial's row (:meth:`record`, which sets ``row["progress"]``) and how
    the table looks (:meth:`render`).
    """

    def __init__(self, space: list[str], total: int, trials: int) -> None:
        self.space = space
        self.total = total
        """Progress (folds, iterations) at which a trial has run to the end."""
        self.trials = trials
        self.rows: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self._live: Live | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_live": None}

    def record(self, row: dict[str, Any], result: dict[str, Any]) -> None:
        raise NotImplementedError

    def render(self) -> Group:
        raise NotImplementedError

    def _update(self, trial: Any, status: str, result: dict[str, Any] | None = None) -> None:
        row = self.rows.setdefault(
            trial.trial_id, {"params": {k: trial.config.get(k) for k in self.space}}
        )
        row["status"] = status
        if result:
            self.record(row, result)
        if self._live is None:
            self._live = Live(self.render(), console=console, refresh_per_second=4)
            self._live.start()
        self._live.update(self.render())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "running")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._update(trial, "running", result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self.rows.get(trial.trial_id, {})
        self._update(trial, "done" if row.get("progress", 0) >= self.total else "stopped")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "error")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None


class SweepProgress(LiveTrialTable):
    """The sweep's trials with their folds and validation log loss, best so far on top."""

    def __init__(self, space: list[str], folds: int, trials: int) -> None:
        super().__init__(space, folds, trials)

    def record(self, row: dict[str, Any], result: dict[str, Any]) -> None:
        row["loss"] = result.get(METRIC)
        row["progress"] = result.get(METRIC_FOLDS_DONE, 0)

    def render(self) -> Group:
        scored = [r for r in self.rows.values() if _finite(r.get("loss"))]
        best = min(scored, key=lambda r: r["loss"]) if scored else None
        done = sum(r["status"] in ("done", "stopped", "error") for r in self.rows.values())
        title = (
            f"trials {done}/{self.trials} done, {len(self.rows) - done} running, "
            f"{time.monotonic() - self.started:.0f}s"
        )
        table = Table(title=title, title_justify="left")
        table.add_column("trial")
        for name in self.space:
            table.add_column(name.rsplit(".", 1)[-1], justify="right", overflow="fold")
        for col in ("folds", "valid log loss", "status"):
            table.add_column(col, justify="right")
        ordered = sorted(
            self.rows.items(),
            key=lambda kv: (kv[1]["status"] != "running", kv[1].get("loss") or math.inf),
        )
        for trial_id, row in ordered[:LIVE_ROWS]:
            style = "bold green" if row is best else None
            table.add_row(
                trial_id,
                *(_fmt(row["params"][k]) for k in self.space),
                f"{row.get('progress', 0)}/{self.total}",
                _fmt(row.get("loss")),
                row["status"],
                style=style,
            )
        headline = (
            Text(f"best so far: {best['loss']:.4f}", style="bold green")
            if best
            else Text("waiting for the first fold...")
        )
        return Group(headline, table)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4f}"
    return "-" if value is None else str(value)


def sweep_command(
    family: str, config_path: Path, trials: int | None, resume: bool, promote: bool
) -> SweepOutcome:
    """Run one sweep from the CLI: live table, then the holdout table of the refitted best."""
    from cluster.ray_runtime import connect

    config = load_config(config_path, SweepConfig)
    if config.family != family:
        raise typer.BadParameter(f"{config_path} configures a {config.family}, not a {family}")
    # Tune's own reporter would print over the live table: the legacy one is silent at
    # verbose=0 (the newer one always prints a header). Worker output stays in Ray's logs.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    connect(log_to_driver=False)
    progress = SweepProgress(list(config.space), config.folds, trials or config.trials)
    console.print(
        f"sweep [bold]{config.resolved_sweep_name()}[/]: {trials or config.trials} trial(s), "
        f"{config.folds} walk-forward fold(s) each, on the Ray cluster"
        + (" (resuming)" if resume else "")
    )
    outcome = run_sweep(config, trials=trials, resume=resume, callbacks=[progress], verbose=0)
    console.print(
        f"{outcome.trials} trial(s): {outcome.completed} finished every fold, "
        f"{outcome.stopped_early} stopped early by ASHA, {outcome.errored} failed; "
        f"best valid log loss {outcome.best_valid_log_loss:.4f} with "
        + ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in outcome.best_params.items())
    )
    result = outcome.result
    assert result is not None
    console.print(report_table(result.report, f"holdout: {result.model_name} (refitted best)"))
    registered = f", registered as version {result.version} (challenger)" if result.version else ""
    console.print(f"MLflow run {result.run_id}{registered}")
    if promote and result.version:
        from cluster.training import promote_challenger

        decision = promote_challenger(result.model_name, config.data)
        console.print(decision.reason)
    return outcome


_TRIALS = typer.Option(None, "--trials", min=1, help="Configurations to try (default: config).")
_RESUME = typer.Option(False, "--resume", help="Continue the interrupted sweep of this config.")
_PROMOTE = typer.Option(
    False, "--promote", help="Run the promotion gate on the registered challenger."
)


@app.command("ensemble")
def sweep_ensemble(
    config: Path = typer.Option(Path("configs/sweeps/lightgbm.yaml"), help="Sweep config YAML."),
    trials: int | None = _TRIALS,
    resume: bool = _RESUME,
    promote: bool = _PROMOTE,
) -> None:
    """Tune a tree model (LightGBM by default), refit the best and register it."""
    sweep_command("ensemble", config, trials, resume, promote)


@app.command("classifier")
def sweep_classifier(
    config: Path = typer.Option(Path("configs/sweeps/classifier.yaml"), help="Sweep config YAML."),
    trials: int | None = _TRIALS,
    resume: bool = _RESUME,
    promote: bool = _PROMOTE,
) -> None:
    """Tune the Keras classifier, refit the best and register it."""
    sweep_command("classifier", config, trials, resume, promote)
