"""``betml predict``: score selections in bulk with a registered model (a Ray Data job)."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.console import Console

from cluster.settings import get_settings

app = typer.Typer(help="Score selections with a registered model.", no_args_is_help=True)
console = Console()


class IfExists(StrEnum):
    FAIL = "fail"
    REPLACE = "replace"
    APPEND = "append"


@app.command("batch")
def batch(
    input_: str = typer.Option(
        ...,
        "--input",
        "-i",
        metavar="PATH|SQL",
        help="A Parquet file or folder, a CSV file (or folder of them), 'sql:SELECT ...' or "
        "'table:NAME' (run against DATABASE_URL). Needs event_key, market_key and the model's "
        "feature columns.",
    ),
    output: str = typer.Option(
        ...,
        "--output",
        "-o",
        metavar="PATH|TABLE",
        help="NAME.parquet or NAME.csv (one file), another path (a folder of Parquet parts) or "
        "'table:NAME' (in DATABASE_URL).",
    ),
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        metavar="NAME[@ALIAS]",
        help="Registered model: NAME (its champion), NAME@ALIAS or NAME/VERSION.",
    ),
    if_exists: IfExists = typer.Option(
        IfExists.FAIL, help="An existing output: refuse it, replace it, or append (tables only)."
    ),
    rows_per_batch: int | None = typer.Option(
        None, min=1, help="Target rows of one scored batch (markets are never split)."
    ),
    max_actors: int | None = typer.Option(
        None, min=1, help="Most scoring actors, one CPU each. Default: the cluster's CPUs."
    ),
) -> None:
    """Score every selection of the input with a registered model and write the probabilities
    (p_model, model_name, model_version) next to the input's key columns, atomically."""
    from cluster.ray_runtime import connect
    from serve.batch import DEFAULT_ROWS_PER_BATCH, BatchOptions, Sink, Source, score_batch

    source, sink = Source.parse(input_), Sink.parse(output)  # refuse bad arguments before Ray
    options = BatchOptions(
        rows_per_batch=rows_per_batch or DEFAULT_ROWS_PER_BATCH,
        max_actors=max_actors,
        if_exists=if_exists.value,
    )
    settings = get_settings()
    connect(settings)
    summary = score_batch(model, source, sink, database_url=settings.database_url, options=options)
    console.print(
        f"scored {summary.rows:,} selections in {summary.markets:,} markets with "
        f"{summary.model_name} version {summary.model_version} in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rows/s; {summary.partitions} batches on up to "
        f"{summary.actors} actors); wrote {summary.destination}",
        highlight=False,
    )
