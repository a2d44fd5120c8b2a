"""Raw-event feature latency as the history grows: the kept feature state against a rebuild.

How to run (from the repository root)::

    python -m benchmarks.online_features                 # 2k, 20k and 70k settled matches
    python -m benchmarks.online_features --sizes 2000 20000 --reads 200

For each size, simulated football leagues (``events_per_season`` matches a season, several
leagues side by side) are stored in a throw-away SQLite store. The request is the raw event of
an upcoming match (after the last stored one) with its 1X2 and over/under prices, built as
GetPrediction builds it. Timed, side by side in one run:

- ``rebuild``: what serving did before the feature state (:mod:`benchmarks.rebuild_baseline`):
  the batch features over the sport's whole stored history (kept in memory as a selection frame,
  as the old ``SportHistory`` did) plus the request, per request;
- ``state (embedded)``: :meth:`cluster.feature_store.FeatureStates.features`, the serving path:
  one settlement-log query, then the request's rows read from the in-process state;
- ``state (redis)``: the same over Redis (``--redis``, default ``redis://127.0.0.1:6379/15``;
  skipped when it does not answer), i.e. one more round trip for the change token.

Also printed: the time to fold the whole history once (what a replica does when it starts with
an embedded store) and the state's size.

Results to expect (2-core VM): see the README's "Online feature state".
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from benchmarks.rebuild_baseline import rebuild_features
from betting.features import FEATURE_COLUMNS
from betting.frames import selection_frame
from betting.simulate import simulate
from betting.store import create_engine_for, migrate, session_scope, write_batch
from cluster.feature_store import EmbeddedFeatureStore, FeatureStates, RedisFeatureStore
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import prediction_request
from tests.serving import as_raw_event

EVENTS_PER_SEASON = 7000


def _timings(call: Callable[[], object], reads: int, budget_s: float) -> list[float]:
    call()  # warm
    out: list[float] = []
    started = time.perf_counter()
    while len(out) < reads and (time.perf_counter() - started < budget_s or len(out) < 3):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000


def measure(size: int, folder: Path, reads: int, redis_url: str | None) -> dict[str, object]:
    seasons = max(1, math.ceil(size / EVENTS_PER_SEASON))
    per_season = math.ceil(size / seasons)
    batch = simulate("football", seasons, seed=size, events_per_season=per_season, bookmakers=2)
    engine = create_engine_for(f"sqlite:///{folder / f'store-{size}.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, batch)
    last = batch.events.sort_values("starts_at")["event_key"].iloc[-1]
    event = as_raw_event(batch, str(last))
    event.event_key = "upcoming"
    event.starts_at.FromDatetime(datetime(2040, 1, 1, tzinfo=UTC))
    request = pb.GetPredictionRequest(raw_event=event, market_key="1x2")
    raw = prediction_request(request, datetime.now(UTC)).raw
    assert raw is not None
    request_frame = selection_frame(raw.batch)
    history = selection_frame(batch)

    embedded = FeatureStates(lambda: engine, EmbeddedFeatureStore())
    fold_started = time.perf_counter()
    embedded.current("football")
    fold_s = time.perf_counter() - fold_started
    state = embedded.current("football").kept.state

    def rebuild() -> pd.DataFrame:
        combined = pd.concat([history, request_frame], ignore_index=True)
        return rebuild_features(combined).iloc[len(history) :]

    # The two paths agree on the request's rows.
    new_rows = embedded.features("football", request_frame)[FEATURE_COLUMNS].to_numpy(float)
    old_rows = rebuild()[FEATURE_COLUMNS].to_numpy(float)
    assert ((abs(new_rows - old_rows) <= 1e-9) | (new_rows != new_rows)).all()

    result: dict[str, object] = {
        "size": len(batch.events),
        "rebuild": _timings(rebuild, max(3, reads // 50), 20.0),
        "embedded": _timings(lambda: embedded.features("football", request_frame), reads, 20.0),
        "fold_s": fold_s,
        "state_kb": len(state.to_bytes()) / 1024,
        "participants": len(state.participants),
    }
    if redis_url:
        store = RedisFeatureStore(redis_url, prefix=f"betml-bench:{uuid.uuid4().hex}")
        try:
            store.client.ping()
        except Exception as e:  # noqa: BLE001 - reported, the rest runs
            print(f"no Redis at {redis_url} ({e}): its column is left out")
        else:
            shared = FeatureStates(lambda: engine, store)
            shared.current("football")
            result["redis"] = _timings(
                lambda: shared.features("football", request_frame), reads, 20.0
            )
            keys = list(store.client.scan_iter(f"{store.prefix}:*"))
            if keys:
                store.client.delete(*keys)
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 70000])
    parser.add_argument("--reads", type=int, default=300, help="Timed reads per path and size.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="'' skips Redis.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=140)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            console.print(f"measuring {size:,} settled matches ...")
            results.append(measure(size, Path(tmp), args.reads, args.redis or None))
    table = Table(title="Raw-event features: p50 / p99 ms per request (one caller)")
    for column in ("settled matches", "rebuild", "state (embedded)", "state (redis)",
                   "rebuild / embedded", "fold once", "state"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        rebuild, embedded = r["rebuild"], r["embedded"]
        redis = r.get("redis")
        table.add_row(
            f"{r['size']:,}",
            f"{_p(rebuild, 0.5):.1f} / {_p(rebuild, 0.99):.1f}",  # type: ignore[arg-type]
            f"{_p(embedded, 0.5):.2f} / {_p(embedded, 0.99):.2f}",  # type: ignore[arg-type]
            f"{_p(redis, 0.5):.2f} / {_p(redis, 0.99):.2f}" if redis else "-",  # type: ignore[arg-type]
            f"{statistics.median(rebuild) / statistics.median(embedded):.0f}x",  # type: ignore[arg-type]
            f"{r['fold_s']:.2f} s",
            f"{r['participants']} participants, {r['state_kb']:.0f} kB",
        )
    console.print(table)
    first, last = results[0], results[-1]
    growth = statistics.median(last["embedded"]) / statistics.median(first["embedded"])  # type: ignore[arg-type]
    console.print(f"state p50 at the largest size / smallest: {growth:.2f}x (goal: <= 1.5x)")


if __name__ == "__main__":
    main()
