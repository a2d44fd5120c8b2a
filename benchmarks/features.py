"""How fast :func:`betting.features.build_features` is, and how its cost grows with the data.

How to run:
    python -m benchmarks.features                      # ~100k and ~1M selections
    python -m benchmarks.features --sizes 50000 200000 --repeats 2

Each size is a simulated football history (:func:`betting.simulate.simulate`: a 1X2 and an
over/under market per game, five selections a game, five seasons) turned into a selection frame;
only ``build_features`` is timed, best of ``--repeats`` (3) runs for sizes up to 200k selections
and of ``--large-repeats`` (2) above. ``growth`` is (time ratio) / (size ratio) against the
previous size: 1.0 means cost grows linearly with the number of selections.

Results to expect (2-core shared VM, pandas 3.1, Python 3.11): 0.14-0.25 s for 100k selections
and 2.0-2.4 s for 1M, i.e. 400k-700k selections/s, growth between 0.8 and 1.5 from run to run
(roughly linear; the sequential Elo pass is about 0.3 s of the 1M run). Simulating the 1M frame
takes longer (30-40 s) than featurising it.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

import pandas as pd
from rich.console import Console
from rich.table import Table

from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.simulate import simulate

SELECTIONS_PER_GAME = 5  # 1X2 (3) + over/under 2.5 (2)
SEASONS = 5
REPEAT_LIMIT = 200_000


@dataclass(frozen=True)
class Measurement:
    """One size's timing."""

    rows: int
    events: int
    seconds: float
    runs: int


def football_frame(selections: int, seed: int) -> pd.DataFrame:
    """A simulated football selection frame of about ``selections`` rows."""
    games = max(selections // SELECTIONS_PER_GAME // SEASONS, 1)
    batch = simulate("football", SEASONS, seed, events_per_season=games)
    return selection_frame(batch)


def measure(frame: pd.DataFrame, runs: int) -> Measurement:
    """Best wall time of ``runs`` calls of ``build_features`` on ``frame``."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        build_features(frame)
        best = min(best, time.perf_counter() - start)
    return Measurement(len(frame), frame["event_key"].nunique(), best, runs)


def table(results: list[Measurement]) -> Table:
    """Side-by-side table of the measurements, each size compared with the previous one."""
    out = Table(
        title=f"build_features ({len(FEATURE_COLUMNS)} features)",
        caption="growth = time x / size x against the previous size (1.00 = linear)",
    )
    for name in ("selections", "events", "runs", "seconds", "rows/s", "size x", "time x", "growth"):
        out.add_column(name, justify="right")
    previous: Measurement | None = None
    for m in results:
        size_x = time_x = growth = "-"
        if previous is not None:
            size_ratio = m.rows / previous.rows
            time_ratio = m.seconds / previous.seconds
            size_x, time_x = f"{size_ratio:.2f}", f"{time_ratio:.2f}"
            growth = f"{time_ratio / size_ratio:.2f}"
        out.add_row(
            f"{m.rows:,}",
            f"{m.events:,}",
            str(m.runs),
            f"{m.seconds:.3f}",
            f"{m.rows / m.seconds:,.0f}",
            size_x,
            time_x,
            growth,
        )
        previous = m
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs for sizes up to 200k")
    parser.add_argument("--large-repeats", type=int, default=2, help="runs for larger sizes")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    results = []
    for size in sorted(args.sizes):
        start = time.perf_counter()
        frame = football_frame(size, args.seed)
        console.log(f"built a frame of {len(frame):,} selections in "
                    f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        runs = args.repeats if size <= REPEAT_LIMIT else args.large_repeats
        results.append(measure(frame, runs))
    console.print(table(results))


if __name__ == "__main__":
    main()
