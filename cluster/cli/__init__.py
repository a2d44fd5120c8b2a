"""The ``betml`` command line: thin commands that parse arguments and call one library function."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from betting.errors import BetmlError
from cluster.cli import backtest, data, feedback, jobs, models, predict, rl, serve, sweep
from cluster.logging import configure_logging
from cluster.settings import get_settings

app = typer.Typer(
    name="betml",
    help="betml: betting-strategy machine learning on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(models.train_app, name="train")
app.add_typer(models.models_app, name="models")
app.add_typer(sweep.app, name="sweep")
rl.add_commands(train_app=models.train_app, sweep_app=sweep.app)
app.command("backtest")(backtest.backtest)
app.add_typer(predict.app, name="predict")
app.add_typer(serve.app, name="serve")
app.command("submit", context_settings=jobs.SUBMIT_CONTEXT)(jobs.submit)
app.add_typer(jobs.app, name="jobs")
app.add_typer(feedback.app, name="feedback")

err = Console(stderr=True)


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
) -> None:
    settings = get_settings()
    configure_logging("DEBUG" if verbose else settings.log_level, settings.effective_log_format)


def main() -> None:
    """Entry point of the ``betml`` console script: betml's own errors become one clear line."""
    # TensorFlow's C++ start-up notices (oneDNN, CPU features) are noise on a terminal; a local
    # Ray started by this process hands the setting to its workers.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        app()
    except BetmlError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
