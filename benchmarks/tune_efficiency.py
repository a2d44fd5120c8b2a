"""How well a Tune sweep keeps the CPUs busy: its wall time against the ideal parallel time.

How to run:
    python -m benchmarks.tune_efficiency                # 8 trials on all of the machine's CPUs
    python -m benchmarks.tune_efficiency --trials 4 --cpus 2 --estimators 50

A simulated football 1X2 table (``--seasons`` seasons of ``--teams`` teams, the last season held
out as ``cluster.sweeps.run`` does) is swept by a small LightGBM sweep: ``--trials`` Optuna
configurations, two walk-forward folds each, one CPU a trial, under ASHA and with every trial
logged to a throw-away MLflow SQLite store, exactly as ``betml sweep`` runs it but without the
refit of the best configuration (only :func:`cluster.tuning.run_sweep` is timed). Then the same
configurations, each for the folds it ran in the sweep, are fitted one after another in this
process without Ray: the serial baseline.

Rows of the table:

- serial: the baseline's wall time; ratio 1.00.
- sweep: the sweep's wall time; ratio = speed-up (serial / sweep).
- sum of trial times: each trial's ``time_total_s`` as Tune reports it, added up; ratio = sum /
  serial (above 1: a trial is slower in a Ray worker than in this process).
- of which fitting: the folds' fits as the trials time them (``fold_seconds``); ratio = fitting /
  serial. Tune starts every trial in a fresh worker process, so each trial's first fit also
  imports the model libraries (the serial baseline imports them once).
- ideal: sum of trial times / CPUs used (the sweep's wall time had the trials run back to back
  with no gaps); ratio = parallel efficiency (ideal / sweep).
- Tune overhead: sweep - ideal, per trial in ``per-trial s``; ratio = its share of the sweep.

Results to expect (2-core VM, Ray 2.60, Python 3.11): with the defaults the sweep takes 14-16 s
against about 1 s serially, parallel efficiency about 0.2-0.25: the default trials are tiny (a fit
is ~0.1 s) and Tune costs ~1.4 s per trial, so the overhead dominates; trials of tens of seconds
(real data, the Keras net) are where a sweep pays off.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune import ResultGrid
from rich.console import Console
from rich.table import Table

from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import ray_runtime
from cluster.settings import Settings, get_settings
from cluster.sweeps import (
    METRIC,
    METRIC_FOLDS_DONE,
    SweepConfig,
    fold_log_loss,
    sweep_trial,
    trial_params,
    validation_folds,
)
from cluster.tracking import configure_mlflow
from cluster.training import split_holdout
from cluster.tuning import SweepSettings, run_sweep

FOLDS = 2
SWEEP_NAME = "tune-efficiency"
SPACE = {
    "member_params.lightgbm.num_leaves": {"type": "int", "low": 3, "high": 15},
    "member_params.lightgbm.learning_rate": {"type": "loguniform", "low": 0.02, "high": 0.3},
}


@dataclass(frozen=True)
class Trial:
    """One finished (or stopped) trial of the sweep."""

    sampled: dict[str, Any]
    folds: int
    seconds: float
    """Tune's ``time_total_s``."""
    fit_seconds: float
    """The trial's own timing of its folds' fits (``fold_seconds``, added up)."""


@dataclass(frozen=True)
class Measurement:
    """The sweep and its serial baseline."""

    cpus: int
    trials: list[Trial]
    sweep_seconds: float
    serial_seconds: float

    @property
    def trial_seconds(self) -> float:
        return sum(t.seconds for t in self.trials)

    @property
    def fit_seconds(self) -> float:
        return sum(t.fit_seconds for t in self.trials)

    @property
    def ideal_seconds(self) -> float:
        return self.trial_seconds / self.cpus

    @property
    def efficiency(self) -> float:
        return self.ideal_seconds / self.sweep_seconds


def sweep_config(trials: int, estimators: int) -> SweepConfig:
    """A small LightGBM sweep, one CPU (and one LightGBM thread) a trial."""
    return SweepConfig.model_validate(
        {
            "family": "ensemble",
            "params": {
                "kind": "lightgbm",
                "member_params": {"lightgbm": {"n_estimators": estimators}},
            },
            "space": SPACE,
            "folds": FOLDS,
            "trials": trials,
            "seed": 1,
            "sweep_name": SWEEP_NAME,
            "register_model": False,
        }
    )


def football_table(seasons: int, teams: int, seed: int) -> pd.DataFrame:
    """Featurised 1X2 selections of a simulated football history."""
    frame = build_features(selection_frame(simulate("football", seasons, seed=seed, teams=teams)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


def timed_sweep(
    config: SweepConfig, train: pd.DataFrame, settings: Settings, storage: Path
) -> tuple[float, ResultGrid]:
    """Wall time and results of the sweep, set up as :func:`cluster.sweeps.run` sets it up."""
    sweep = SweepSettings(
        name=SWEEP_NAME, metric=METRIC, mode="min", num_samples=config.trials,
        cpus_per_trial=config.cpus_per_trial, max_concurrent=config.max_concurrent,
        grace_period=1, max_t=config.folds, seed=config.seed, max_failures=config.max_failures,
    )  # fmt: skip
    trainable = tune.with_parameters(sweep_trial, table=train, config_json=config.model_dump_json())
    space = {path: dist.to_tune() for path, dist in config.space.items()}
    start = time.perf_counter()
    results = run_sweep(
        trainable, space, sweep, storage_path=storage, environment=settings, verbose=0
    )
    return time.perf_counter() - start, results


def trials_of(results: ResultGrid, config: SweepConfig) -> list[Trial]:
    """The trials that reported at least one fold, with Tune's time for each."""
    trials = []
    for result in results:
        metrics = result.metrics or {}
        if metrics.get(METRIC_FOLDS_DONE, 0) < 1:
            continue
        sampled = {k: result.config[k] for k in config.space}
        folds, seconds = int(metrics[METRIC_FOLDS_DONE]), float(metrics["time_total_s"])
        fit_seconds = float(result.metrics_dataframe["fold_seconds"].sum())
        trials.append(Trial(sampled, folds, seconds, fit_seconds))
    return trials


def serial_seconds(config: SweepConfig, train: pd.DataFrame, trials: list[Trial]) -> float:
    """Wall time of the trials' fits one after another in this process, without Ray."""
    folds = validation_folds(train, config.folds)
    start = time.perf_counter()
    for trial in trials:
        params = trial_params(config, trial.sampled)
        for train_rows, valid_rows in folds[: trial.folds]:
            fold_log_loss(config, params, train.iloc[train_rows], train.iloc[valid_rows])
    return time.perf_counter() - start


def table(m: Measurement) -> Table:
    """Side-by-side table of the serial baseline, the sweep and its ideal parallel time."""
    n = len(m.trials)
    overhead = m.sweep_seconds - m.ideal_seconds
    out = Table(
        title=f"Tune sweep of {n} LightGBM trials on {m.cpus} CPU(s)",
        caption="ratio: serial 1.00; sweep = speed-up (serial / sweep); sum, fitting = x / serial; "
        "ideal = efficiency (ideal / sweep); overhead = share of the sweep",
    )
    for name in ("what", "wall s", "trials", "per-trial s", "ratio"):
        out.add_column(name, justify="left" if name == "what" else "right")
    rows = [
        ("serial, in this process", m.serial_seconds, 1.0),
        ("sweep on Tune", m.sweep_seconds, m.serial_seconds / m.sweep_seconds),
        ("sum of trial times", m.trial_seconds, m.trial_seconds / m.serial_seconds),
        ("  of which fitting", m.fit_seconds, m.fit_seconds / m.serial_seconds),
        (f"ideal: sum / {m.cpus} CPU(s)", m.ideal_seconds, m.efficiency),
        ("Tune overhead: sweep - ideal", overhead, overhead / m.sweep_seconds),
    ]
    for what, seconds, ratio in rows:
        out.add_row(what, f"{seconds:.2f}", str(n), f"{seconds / n:.2f}", f"{ratio:.2f}")
    return out


def use_temporary_store(folder: Path) -> Settings:
    """Point betml's data directory and MLflow at ``folder``; settings with a local Ray."""
    os.environ["BETML_DATA_DIR"] = str(folder)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    get_settings.cache_clear()
    return Settings(ray_address=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seasons", type=int, default=3, help="the last one is held out")
    parser.add_argument("--teams", type=int, default=16)
    parser.add_argument("--estimators", type=int, default=100, help="LightGBM trees a fit")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of Ray")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    config = sweep_config(args.trials, args.estimators)
    start = time.perf_counter()
    train, _ = split_holdout(football_table(args.seasons, args.teams, args.seed), 1)
    console.log(f"built {len(train):,} training selections in "
                f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="betml-tune-efficiency-") as folder:
        settings = use_temporary_store(Path(folder))
        configure_mlflow(settings)  # an existing store, as in use: its creation is not timed
        ray_runtime.connect(
            settings, num_cpus=args.cpus, include_dashboard=False, log_to_driver=False
        )
        try:
            sweep_s, results = timed_sweep(config, train, settings, Path(folder) / "tune")
        finally:
            ray_runtime.shutdown()
    trials = trials_of(results, config)
    if not trials:
        raise SystemExit(f"no trial of the sweep finished a fold: {results.errors}")
    console.log(f"sweep done in {sweep_s:.1f} s; fitting the {len(trials)} trials serially")
    used = min(len(trials), int(args.cpus // config.cpus_per_trial)) * config.cpus_per_trial
    m = Measurement(
        cpus=int(used), trials=trials, sweep_seconds=sweep_s,
        serial_seconds=serial_seconds(config, train, trials),
    )  # fmt: skip
    console.print(table(m))
    finished = sum(t.folds >= FOLDS for t in trials)
    console.print(f"{finished} of {args.trials} trials finished every fold "
                  f"({len(trials) - finished} stopped early by ASHA, "
                  f"{args.trials - len(trials)} failed)")  # fmt: skip
    console.print(f"parallel efficiency {m.efficiency:.2f} on {m.cpus} CPUs "
                  "(1.00 = trials ran back to back with no gaps)")  # fmt: skip


if __name__ == "__main__":
    main()
