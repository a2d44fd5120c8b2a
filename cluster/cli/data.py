"""``betml data``: simulate, import, materialise features and inspect the store."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from betting.errors import ImportRejected
from betting.store import session_scope, store_stats, write_batch
from cluster.db import get_engine

app = typer.Typer(
    help="Simulate, import and inspect events, odds and backtests.", no_args_is_help=True
)
console = Console()


class Sport(StrEnum):
    football = "football"
    racing = "racing"
    moneyline = "moneyline"


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def simulate(
    sport: Sport = typer.Option(Sport.football, help="Which kind of events to simulate."),
    seasons: int = typer.Option(1, min=1, help="Number of seasons."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    teams: int | None = typer.Option(None, min=2, help="Teams (football/moneyline) or runners."),
    events_per_season: int | None = typer.Option(None, min=1, help="Events per season."),
    bookmakers: int = typer.Option(4, min=1, help="Bookmakers quoting each market."),
) -> None:
    """Simulate seasons with a known truth and store them (idempotent per seed)."""
    from betting.simulate import simulate as run_simulation

    with _progress() as progress:
        task = progress.add_task(f"simulating {seasons} season(s) of {sport}", total=None)
        batch = run_simulation(
            sport.value, seasons, seed, teams=teams, bookmakers=bookmakers,
            events_per_season=events_per_season,
        )  # fmt: skip
        progress.update(task, total=1, completed=1)
        write = progress.add_task("storing events", total=len(batch))
        with session_scope(get_engine()) as session:
            report = write_batch(session, batch, on_progress=lambda n: progress.advance(write, n))
    console.print(
        f"{report.events_added} events added, {report.events_skipped} already stored; "
        f"{report.odds_added} odds snapshots."
    )
    _update_feature_state([sport.value])


def _update_feature_state(sports: list[str]) -> None:
    """Fold new results into a shared feature store (BETML_FEATURE_STORE_URL) right away."""
    from cluster.feature_store import update_shared_states
    from cluster.settings import get_settings

    for state in update_shared_states(get_engine, get_settings().feature_store_url, sports):
        console.print(
            f"feature state {state['sport']} ({state['backend']}): "
            f"{state['applied_events']} settled events, {state['participants']} participants, "
            f"latest {state['last_event_key']}"
        )


def _csv_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.csv")))
        elif path.exists():
            files.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATHS")
    return [f for f in files if f.name != "INDEX.csv"]


@app.command("import-football")
def import_football(
    paths: list[Path] = typer.Argument(..., help="football-data.co.uk CSV files or folders."),
    drop_invalid_prices: bool = typer.Option(
        False, help="Drop prices <= 1 (a few real files have some) instead of rejecting the file."
    ),
) -> None:
    """Import football-data.co.uk CSVs; each file is all-or-nothing, re-imports add nothing."""
    from betting.ingest.football_data import import_football_data

    files = _csv_files(paths)
    rejected: list[ImportRejected] = []
    added = skipped = settled = 0
    with _progress() as progress:
        task = progress.add_task("importing", total=len(files))
        for file in files:
            progress.update(task, description=f"importing {file.name}")
            try:
                with session_scope(get_engine()) as session:
                    report = import_football_data(
                        session, file, on_invalid_price="drop" if drop_invalid_prices else "reject"
                    )
                added += report.events_added
                skipped += report.events_skipped
                settled += report.events_settled
            except ImportRejected as e:
                rejected.append(e)
            progress.advance(task)
    console.print(
        f"{len(files)} file(s): {added} matches added, {skipped} already stored"
        + (f", {settled} stored fixtures settled." if settled else ".")
    )
    if added or settled:
        _update_feature_state(["football"])
    _fail_on_rejections(rejected)


@app.command("import-backtest")
def import_backtest(
    paths: list[Path] = typer.Argument(..., help="Backtest export JSON files of the Go service."),
) -> None:
    """Import backtest exports (MLExport JSON); a run already stored is skipped."""
    from betting.ingest.backtest_export import import_backtest_export

    rejected: list[ImportRejected] = []
    for path in paths:
        try:
            with session_scope(get_engine()) as session:
                report = import_backtest_export(session, path)
            console.print(f"{path}: {report}")
        except ImportRejected as e:
            rejected.append(e)
    _fail_on_rejections(rejected)


def _fail_on_rejections(rejected: list[ImportRejected]) -> None:
    for error in rejected:
        console.print(f"[bold red]rejected[/] {error}", highlight=False)
    if rejected:
        raise typer.Exit(1)


@app.command()
def features(
    output: Path = typer.Option(
        Path("var/features/features.parquet"), help="Parquet file to write."
    ),
    sport: Sport = typer.Option(Sport.football, help="Sport (features are built per sport)."),
    competition: list[str] | None = typer.Option(None, help="Only these competitions."),
    season: list[str] | None = typer.Option(None, help="Only these seasons."),
) -> None:
    """Build the feature table of the stored events and write it to Parquet."""
    from betting.features import feature_frame
    from betting.frames import selection_frame
    from betting.store import load_batch

    with _progress() as progress:
        task = progress.add_task("loading events", total=3)
        with session_scope(get_engine()) as session:
            batch = load_batch(
                session, sport=sport.value, competition=competition,
                seasons=season,
            )  # fmt: skip
        progress.update(task, advance=1, description="building features")
        table = feature_frame(selection_frame(batch))
        progress.update(task, advance=1, description=f"writing {output}")
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        table.to_parquet(partial, index=False)
        os.replace(partial, output)
        progress.update(task, advance=1, description="features written")
    console.print(f"{len(table)} selection rows of {len(batch)} events written to {output}")


@app.command()
def stats() -> None:
    """Print what is in the store."""
    with session_scope(get_engine()) as session:
        result = store_stats(session)
    tables = Table(title="rows per table")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, count in result.tables.items():
        tables.add_row(name, f"{count:,}")
    console.print(tables)
    if result.events.empty:
        console.print("no events stored yet: try `betml data simulate`")
        return
    events = Table(title="events")
    for col in ("sport", "competition", "season", "events", "settled", "first", "last"):
        events.add_column(col, justify="right" if col in ("events", "settled") else "left")
    for row in result.events.itertuples(index=False):
        events.add_row(
            row.sport, row.competition, row.season, f"{row.events:,}", f"{int(row.settled):,}",
            str(row.first)[:10], str(row.last)[:10],
        )  # fmt: skip
    console.print(events)
