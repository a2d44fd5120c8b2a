"""``betml train`` and ``betml models``: fit, register, list and promote outcome models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cluster import tracking
from cluster.configs import TrainConfig, family_functions, load_config
from cluster.training import holdout_comparison, promote_challenger, train_and_log

train_app = typer.Typer(help="Train one model from a config and register it.", no_args_is_help=True)
models_app = typer.Typer(help="List and promote registered models.", no_args_is_help=True)
console = Console(width=max(Console().width, 130))


def _train(family: str, config_path: Path, promote: bool = False) -> None:
    config = load_config(config_path, TrainConfig)
    if config.family != family:
        raise typer.BadParameter(f"{config_path} configures a {config.family}, not a {family}")
    fit, predictor_path = family_functions(config.family)
    if int(config.params.get("workers", 1)) > 1:  # data-parallel training runs on Ray Train
        from cluster.ray_runtime import connect

        connect()
    with console.status(f"training {config.registered_family()} on {config.data.sport} "
                        f"{config.data.market}..."):  # fmt: skip
        result = train_and_log(
            config.registered_family(), fit, config.params, config.data,
            predictor_path=predictor_path, seed=config.seed, register=config.register_model,
        )  # fmt: skip
    console.print(report_table(result.report, f"holdout: {result.model_name}"))
    registered = f", registered as version {result.version} (challenger)" if result.version else ""
    console.print(f"MLflow run {result.run_id}{registered}; artifact {result.artifact}")
    if promote and result.version:
        decision = promote_challenger(result.model_name, config.data)
        console.print(decision.reason)


def report_table(report, title: str) -> Table:  # type: ignore[no-untyped-def]
    table = Table(title=title)
    table.add_column("", no_wrap=True)
    for col in report.columns:
        table.add_column(str(col).replace("_", " "), justify="right")
    for row, values in report.iterrows():
        table.add_row(str(row), *(_cell(col, v) for col, v in values.items()))
    return table


def _cell(column: str, value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    if value != value:  # NaN: the row has no such number (no bets, no truth)
        return "-"
    if column == "bets":
        return f"{value:.0f}"
    # Scores of good forecasters differ in the third decimal: show the fourth.
    return f"{value:.4f}" if column in ("log_loss", "brier", "rps", "ece") else f"{value:.3f}"


_PROMOTE = typer.Option(
    False, "--promote", help="Run the promotion gate on the registered challenger."
)


@train_app.command("ensemble")
def train_ensemble(
    config: Path = typer.Option(Path("configs/train/lightgbm.yaml"), help="Train config YAML."),
    promote: bool = _PROMOTE,
) -> None:
    """Train a tree model (RF, GB, XGBoost, LightGBM or stacked) and register it."""
    _train("ensemble", config, promote)


@train_app.command("classifier")
def train_classifier(
    config: Path = typer.Option(Path("configs/train/classifier.yaml"), help="Train config YAML."),
    promote: bool = _PROMOTE,
) -> None:
    """Train the Keras classifier and register it."""
    _train("classifier", config, promote)


@models_app.command("list")
def list_models() -> None:
    """Registered models with their champion and challenger and holdout log loss."""
    tracking.configure_mlflow()
    found = tracking.list_models()
    if not found:
        console.print("no registered models yet: try `betml train ensemble`")
        return
    table = Table(title="registered models")
    for col in ("name", "versions", "champion", "champion log loss", "challenger",
                "challenger log loss"):  # fmt: skip
        table.add_column(col)
    for m in found:
        table.add_row(*(str(v) if v is not None else "-" for v in (
            m.name, m.versions, m.champion_version, m.champion_log_loss, m.challenger_version,
            m.challenger_log_loss)))  # fmt: skip
    console.print(table)


@models_app.command("report")
def report(
    alias: str = typer.Option(tracking.ALIAS_CHAMPION, help="Which version of each model."),
) -> None:
    """Holdout metrics of every registered model's champion next to the market, the truth (the
    floor on simulated data) and the base rate, one table per holdout."""
    tracking.configure_mlflow()
    chosen = [
        (m.name, v)
        for m in tracking.list_models()
        if (v := m.champion_version if alias == tracking.ALIAS_CHAMPION else m.challenger_version)
    ]
    if not chosen:
        console.print(
            f"no registered model has a {alias} yet: try `betml sweep ensemble --promote`"
        )
        raise typer.Exit(1)
    for holdout, table in holdout_comparison(chosen).items():
        console.print(report_table(table, f"holdout {holdout} ({alias}s)"))
    console.print(
        "market_close: the margin-free closing odds; truth: the simulator's true probabilities "
        "(the floor no model can beat); base_rate: each position's win rate on the holdout "
        "itself (home/draw/away), an in-sample baseline a useful model must beat."
    )


@models_app.command("promote")
def promote(
    name: str = typer.Argument(
        ..., help="Registered model name, e.g. betml-lightgbm-football-1x2."
    ),
    force: bool = typer.Option(False, help="Promote even if the challenger is not better."),
) -> None:
    """Move `champion` to the challenger when its holdout log loss is better (or --force)."""
    tracking.configure_mlflow()
    decision = tracking.promote(name, force=force)
    console.print(decision.reason)
    if not decision.promoted:
        raise typer.Exit(1)
