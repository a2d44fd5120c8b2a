"""``betml predict batch`` on Ray Data against a single-process pandas loop, on the same rows.

How to run:
    python -m benchmarks.batch_predict                       # 1M rows, default batch and pool
    python -m benchmarks.batch_predict --rows 200000 --rows-per-batch 50000 100000 --actors 1 2

A LightGBM model (``configs/train/lightgbm.yaml``'s parameters: 200 trees of 15 leaves) is
trained on a simulated 20-team football league and registered as champion in a throw-away MLflow
store. The league's featurised 1X2 selections are tiled with new event keys to ``--rows`` rows
(whole markets) and written as ``--files`` Parquet files with every column a feature file has;
none of that is timed.

Timed, each ``--repeats`` times (the best is shown):

- pandas loop: ``load_predictor`` on the downloaded artifact, ``pd.read_parquet`` of the columns
  the model needs, ``predict_proba`` in chunks of about ``--chunk-rows`` market-complete rows,
  one Parquet file written; all in this process, one LightGBM thread.
- Ray Data: :func:`serve.batch.score_batch` as the command runs it (resolve and fetch the model,
  read, hash-partition by market, score on an autoscaling actor pool, write one Parquet file),
  once per ``--rows-per-batch`` x ``--actors`` setting, on a local Ray started beforehand
  (not timed).

Both outputs are compared (the same probabilities to 1e-12) before the table is printed.

Results to expect (2-core VM, Ray 2.60, Python 3.11): see the README's "Batch scoring" section.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from betting.evaluation import market_ids_of
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import ray_runtime, tracking
from cluster.artifacts import load_predictor
from cluster.settings import Settings, get_settings
from cluster.training import DataConfig, train_and_log
from ensembles.fit import PREDICTOR_PATH, fit_ensemble
from serve.batch import ID_COLUMNS, MARKET_KEYS, BatchOptions, Sink, Source, score_batch

PARAMS = {
    "kind": "lightgbm",
    "member_params": {
        "lightgbm": {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200,
                     "min_child_samples": 40},
    },
}  # fmt: skip
DATA = DataConfig(sport="football", market="1x2", holdout_seasons=1)


@dataclass(frozen=True)
class Run:
    """One timed way of scoring the file."""

    what: str
    rows: int
    seconds: float
    partition_seconds: float | None = None
    """Ray Data: of ``seconds``, until every market sat whole in one block (read and shuffle)."""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def league_table(seasons: int, teams: int, seed: int) -> pd.DataFrame:
    """Featurised 1X2 selections of a simulated football league."""
    frame = build_features(selection_frame(simulate("football", seasons, seed=seed, teams=teams)))
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


def tiled(table: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``table`` repeated with new event keys to the whole markets of at most ``rows`` rows."""
    copies = -(-rows // len(table))
    frames = [table.assign(event_key=table["event_key"] + f"#{i}") for i in range(copies)]
    out = pd.concat(frames, ignore_index=True)
    if rows >= len(out):
        return out
    ids = market_ids_of(out)  # numbered in row order: markets are contiguous here
    return out[ids < ids[rows]].reset_index(drop=True)


def write_input(frame: pd.DataFrame, folder: Path, files: int) -> Path:
    """``frame`` as ``files`` Parquet files (cut at row counts, so markets may span files)."""
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return folder


def pandas_loop(model: str, artifact: Path, source: Path, dest: Path, chunk_rows: int) -> Run:
    """The single-process baseline: load, read, score market-complete chunks, write."""
    start = time.perf_counter()
    predictor = load_predictor(artifact)
    frame = pd.read_parquet(source, columns=list(dict.fromkeys([*ID_COLUMNS, *FEATURE_COLUMNS])))
    ids = market_ids_of(frame)
    order = np.argsort(ids, kind="stable")  # each market's rows together, markets in order
    frame, ids = frame.iloc[order].reset_index(drop=True), ids[order]
    markets_per_chunk = max(chunk_rows * (int(ids[-1]) + 1) // len(ids), 1)
    cuts = [*np.searchsorted(ids, np.arange(0, ids[-1] + 1, markets_per_chunk)), len(ids)]
    p = np.concatenate(
        [predictor.predict_proba(frame.iloc[a:b]) for a, b in itertools.pairwise(cuts)]
    )
    out = frame[ID_COLUMNS].assign(p_model=p, model_name=model, model_version=1)
    out.to_parquet(dest, index=False)
    return Run("pandas loop, 1 process", len(out), time.perf_counter() - start)


def ray_data(model: str, source: Path, dest: Path, options: BatchOptions) -> Run:
    """``betml predict batch`` as the command runs it, on the connected Ray."""
    summary = score_batch(
        model, Source.parse(str(source)), Sink.parse(str(dest)),
        database_url=get_settings().database_url, options=options,
    )  # fmt: skip
    what = (f"Ray Data, {summary.actors} actor(s), {summary.partitions} batches of "
            f"~{options.rows_per_batch:,}")  # fmt: skip
    return Run(what, summary.rows, summary.seconds, summary.partition_seconds)


def same_probabilities(a: Path, b: Path) -> float:
    """The largest difference between two outputs' probabilities, row for row by key."""
    keys = [*MARKET_KEYS, "selection"]
    left = pd.read_parquet(a, columns=[*keys, "p_model"]).sort_values(keys)
    right = pd.read_parquet(b, columns=[*keys, "p_model"]).sort_values(keys)
    if len(left) != len(right):
        raise SystemExit(f"outputs differ in length: {len(left)} and {len(right)}")
    return float(np.abs(left["p_model"].to_numpy() - right["p_model"].to_numpy()).max())


def table(runs: list[Run], cpus: int) -> Table:
    """Side-by-side table, each run's throughput against the pandas loop's."""
    out = Table(
        title=f"batch scoring of {runs[0].rows:,} selections on {cpus} CPU(s)",
        caption="ratio = rows/s / the pandas loop's rows/s (best of the repeats); of which "
        "partitioning = reading and hash-partitioning by market, before scoring starts",
    )
    for name in ("what", "rows", "seconds", "of which partitioning", "rows/s", "ratio"):
        out.add_column(name, justify="left" if name == "what" else "right")
    base = runs[0].rows_per_second
    for r in runs:
        partition = "-" if r.partition_seconds is None else f"{r.partition_seconds:.2f}"
        out.add_row(r.what, f"{r.rows:,}", f"{r.seconds:.2f}", partition,
                    f"{r.rows_per_second:,.0f}", f"{r.rows_per_second / base:.2f}")  # fmt: skip
    return out


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def use_temporary_store(folder: Path) -> Settings:
    """Point betml's data directory and MLflow at ``folder``; settings with a local Ray."""
    os.environ["BETML_DATA_DIR"] = str(folder)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    get_settings.cache_clear()
    return Settings(ray_address=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8, help="Parquet files of the input")
    parser.add_argument("--rows-per-batch", type=int, nargs="+", default=[100_000])
    parser.add_argument("--actors", type=int, nargs="+", default=[0], help="0: all CPUs")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="pandas loop chunks")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of Ray")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="betml-batch-bench-") as tmp:
        folder = Path(tmp)
        settings = use_temporary_store(folder)
        start = time.perf_counter()
        league = league_table(seasons=4, teams=20, seed=args.seed)
        trained = train_and_log("lightgbm", fit_ensemble, PARAMS, DATA,
                                predictor_path=PREDICTOR_PATH, table=league)  # fmt: skip
        tracking.promote(trained.model_name, force=True)
        source = write_input(tiled(league, args.rows), folder / "input", args.files)
        artifact = tracking.download_model(trained.model_name, folder / "model")
        console.log(f"trained {trained.model_name} and wrote the input in "
                    f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        baseline = folder / "pandas.parquet"
        runs = [best([pandas_loop(trained.model_name, artifact, source, baseline, args.chunk_rows)
                      for _ in range(args.repeats)])]  # fmt: skip
        console.log(f"pandas loop: {runs[0].seconds:.2f} s")
        ray_runtime.connect(settings, num_cpus=args.cpus, log_to_driver=False)
        try:
            for rows_per_batch, actors in itertools.product(args.rows_per_batch, args.actors):
                options = BatchOptions(rows_per_batch=rows_per_batch, max_actors=actors or None,
                                       if_exists="replace")  # fmt: skip
                dest = folder / "ray.parquet"
                timed = [ray_data(trained.model_name, source, dest, options)
                         for _ in range(args.repeats)]  # fmt: skip
                console.log(f"{timed[0].what}: " + ", ".join(f"{r.seconds:.2f} s" for r in timed))
                runs.append(best(timed))
                gap = same_probabilities(baseline, dest)
                if gap > 1e-12:
                    raise SystemExit(f"Ray Data and pandas probabilities differ by {gap}")
        finally:
            ray_runtime.shutdown()
    console.print(table(runs, args.cpus))


if __name__ == "__main__":
    main()
