"""Serving throughput and latency: betml's Serve application next to a plain ``grpc.aio`` server.

How to run (from the repository root; ``-m``, so that ``serve`` is betml's package)::

    python -m benchmarks.serve                               # everything (about 13 minutes)
    python -m benchmarks.serve --batch-rows 0 --modes default --knobs   # parts 1 and 2 only
    python -m benchmarks.serve --quick                       # tiny settings (the smoke test)

A simulated football league (``--seasons`` x ``--teams``) is stored in a throw-away SQLite store,
and a LightGBM model (``benchmarks.batch_predict``'s parameters: 200 trees of 15 leaves) is
trained on it and registered as champion in a throw-away MLflow store; none of that is timed.
Every timed number is a load run of :mod:`benchmarks.serve_load`: a separate client process
whose ``--concurrency`` ``grpc.aio`` callers send the same request back to back for
``--duration`` seconds after ``--warmup`` seconds. LightGBM uses one thread everywhere.

1. GetPrediction, for the latest stored event's 1X2 market (``event_key``) and for the same
   event sent raw (``raw_event``, online features built per request), at each concurrency:
   through the Serve application's gRPC proxy (proxy -> ``Ingress`` -> ``ensemble``
   deployment), next to the baseline, :mod:`benchmarks.serve_plain`: the same
   ``PredictionService`` and model on a plain single-process ``grpc.aio`` server.
2. BatchPredict of ``--batch-markets`` stored markets per call, rows/s, through both servers,
   next to the model's own ``predict_proba`` on the same rows in this process.
3. Serve settings: the application in each of ``--modes`` (``default``, ``throughput``:
   ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``, each in its own process and local Ray) and with each
   of ``--knobs`` (Serve options of the deployments), GetPrediction of the stored event at the
   highest concurrency; in throughput mode also straight to the ingress replica's own gRPC port
   (direct ingress: no proxy hop).
4. ``betml predict batch`` on ``--batch-rows`` rows next to a single-process pandas loop:
   :mod:`benchmarks.batch_predict` run as it is, printing its own table (0 skips it).

Both servers' answers are compared (the same probabilities to 1e-9) before the tables print.
Prediction logging is off in both (it writes to the store; the baseline has none).

Results to expect (2-core VM, Ray 2.60, Python 3.11): see the README's "Serving benchmark".
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from benchmarks.batch_predict import DATA, PARAMS, use_temporary_store
from benchmarks.serve_load import RPCS, Load, spawn_load
from benchmarks.serve_ray import LoadSpec, Plan, Setting
from betting.simulate import simulate
from betting.store import create_engine_for, migrate, session_scope, write_batch
from cluster import tracking
from cluster.training import train_and_log
from ensembles.fit import PREDICTOR_PATH, fit_ensemble
from serve.online import OnlineFeatures
from tests.serving import as_raw_event

API_KEY = "benchmark-key"
MARKET = "1x2"
#: Serve options per ``--knobs`` name: (deployment, option); ``batch-size`` is an ``args`` field.
KNOBS = {
    "ingress-replicas": ("Ingress", "num_replicas"),
    "model-replicas": ("ensemble", "num_replicas"),
    "ingress-max-ongoing": ("Ingress", "max_ongoing_requests"),
    "model-max-ongoing": ("ensemble", "max_ongoing_requests"),
    "batch-size": ("ensemble", "max_batch_size"),
}
_READY_TIMEOUT_S = 180.0


def serve_args(model: str, markets: int, batch_size: int | None = None) -> dict[str, Any]:
    """The application's ``args``: the ensemble deployment preloading ``model``, no agent."""
    ensemble: dict[str, Any] = {"families": ["lightgbm"], "preload": [model], "poll_interval_s": 60}
    if batch_size is not None:
        ensemble["max_batch_size"] = batch_size
    return {
        "models": {"ensemble": ensemble}, "agent": None, "prediction_log": {"enabled": False},
        "features": {"warm_sports": ["football"]}, "max_batch_markets": max(1000, markets),
    }  # fmt: skip


def knob_setting(knob: str, model: str, markets: int, loads: list[LoadSpec]) -> Setting:
    """``name=value[,name=value]`` of :data:`KNOBS` as a setting."""
    deployments: dict[str, dict[str, Any]] = {}
    batch_size = None
    for part in knob.split(","):
        name, _, value = part.partition("=")
        if name not in KNOBS or not value.isdigit():
            raise SystemExit(
                f"--knobs: {part!r} is not NAME=INTEGER with NAME one of {list(KNOBS)}"
            )
        deployment, option = KNOBS[name]
        if name == "batch-size":
            batch_size = int(value)
        else:
            deployments.setdefault(deployment, {"name": deployment})[option] = int(value)
    args = serve_args(model, markets, batch_size)
    return Setting(name=knob, args=args, deployments=list(deployments.values()), loads=loads)


# --- set-up ----------------------------------------------------------------------------------


def prepare(folder: Path, seasons: int, teams: int, trees: int, seed: int) -> tuple[str, Any]:
    """Store a league, train and promote the model; (registered name, the stored batch)."""
    use_temporary_store(folder)
    database_url = f"sqlite:///{folder / 'betml.db'}"
    os.environ.update({
        "DATABASE_URL": database_url, "BETML_API_KEY": API_KEY, "BETML_ENV": "test",
        "MLFLOW_EXPERIMENT_NAME": "betml-serve-bench", "OMP_NUM_THREADS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    })  # fmt: skip
    engine = create_engine_for(database_url)
    migrate(engine)
    batch = simulate("football", seasons, seed=seed, teams=teams)
    with session_scope(engine) as session:
        write_batch(session, batch)
    engine.dispose()
    params = json.loads(json.dumps(PARAMS))
    params["member_params"]["lightgbm"]["n_estimators"] = trees
    trained = train_and_log("lightgbm", fit_ensemble, params, DATA, predictor_path=PREDICTOR_PATH)
    tracking.promote(trained.model_name, force=True)
    return trained.model_name, batch


def write_requests(folder: Path, batch: Any, markets: int) -> dict[str, Path]:
    """The serialized requests of the loads, by label (``stored``, ``raw``, ``batch``)."""
    from serve.proto.betml.v1 import ml_service_pb2 as pb

    events = batch.events.sort_values("starts_at")
    latest = str(events["event_key"].iloc[-1])
    staking = pb.StakingOptions(bankroll=1000.0)
    keys = itertools.islice(itertools.cycle(events["event_key"].iloc[::-1]), markets)
    requests: dict[str, Message] = {
        "stored": pb.GetPredictionRequest(event_key=latest, market_key=MARKET, staking=staking),
        "raw": pb.GetPredictionRequest(
            raw_event=as_raw_event(batch, latest), market_key=MARKET, staking=staking
        ),
        "batch": pb.BatchPredictRequest(
            requests=[pb.GetPredictionRequest(event_key=str(k), market_key=MARKET) for k in keys]
        ),
    }
    paths = {}
    for label, message in requests.items():
        paths[label] = folder / f"{label}.bin"
        paths[label].write_bytes(message.SerializeToString())
    return paths


# --- the baseline -----------------------------------------------------------------------------


def run_plain(model: str, args: dict[str, Any], specs: list[LoadSpec], plan: Plan) -> list[Load]:
    """Start :mod:`benchmarks.serve_plain`, run ``specs`` against it, stop it."""
    ready = plan.workdir / "plain-ready.json"
    log = (plan.workdir / "plain.log").open("w")
    command = [sys.executable, "-m", "benchmarks.serve_plain", "--model", f"{model}@champion",
               "--args", json.dumps(args), "--ready-file", str(ready)]  # fmt: skip
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the plain server did not start; see {log.name}")
            time.sleep(0.2)
        target = f"127.0.0.1:{json.loads(ready.read_text())['port']}"
        return [
            spawn_load(target, s.rpc, s.request, concurrency=s.concurrency,
                       duration_s=plan.duration_s, warmup_s=plan.warmup_s,
                       metadata=plan.metadata, workdir=plan.workdir)
            for s in specs
        ]  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def run_serve(mode: str, plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """Run ``plan`` in :mod:`benchmarks.serve_ray`, in its own process and local Ray."""
    plan_file, out = plan.workdir / f"plan-{mode}.json", plan.workdir / f"serve-{mode}.json"
    plan_file.write_text(plan.model_dump_json())
    env = {**os.environ, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1" if mode == "throughput" else "0"}
    command = [sys.executable, "-m", "benchmarks.serve_ray", "--plan", str(plan_file),
               "--out", str(out)]  # fmt: skip
    with (plan.workdir / f"serve-{mode}.log").open("w") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = (plan.workdir / f"serve-{mode}.log").read_text()[-4000:]
        raise SystemExit(f"the Serve run ({mode}) failed ({done.returncode}):\n{tail}")
    results: dict[str, list[dict[str, Any]]] = json.loads(out.read_text())
    return results


def model_rows_per_second(model: str, batch_request: Path, seconds: float) -> tuple[int, float]:
    """(rows, rows/s) of the model's ``predict_proba`` on the rows of the BatchPredict request,
    in this process, as one frame (the markets' keys made distinct as the service does)."""
    from benchmarks.serve_plain import load_model
    from cluster.db import get_engine
    from cluster.settings import get_settings
    from serve.online import model_input
    from serve.proto.betml.v1 import ml_service_pb2 as pb

    request = pb.BatchPredictRequest.FromString(batch_request.read_bytes())
    features = OnlineFeatures(lambda: get_engine(get_settings()))
    frames = [
        model_input(features.stored_event(r.event_key).market(r.market_key)).assign(
            event_key=f"{n}\x1f{r.event_key}"
        )
        for n, r in enumerate(request.requests)
    ]
    frame = pd.concat(frames, ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = load_model(f"{model}@champion", Path(tmp)).predictor
        predictor.predict_proba(frame)  # warm
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds or calls < 3:
            predictor.predict_proba(frame)
            calls += 1
    return len(frame), len(frame) * calls / elapsed


# --- checks and tables ------------------------------------------------------------------------


def probabilities(load: Load) -> np.ndarray:
    """Every probability of the first answer of a load run."""
    answer: Any = RPCS[load.rpc][1].FromString(base64.b64decode(load.answer))
    answers = [r.prediction for r in answer.results] if load.rpc == "BatchPredict" else [answer]
    return np.array([s.probability for a in answers for s in a.selections])


def check_same_answers(plain: list[Load], served: list[Load]) -> None:
    """Both servers answered every run, refused nothing, and gave the same probabilities."""
    for a, b in zip(plain, served, strict=True):
        for load in (a, b):
            if load.refused or not load.answered:
                raise SystemExit(f"{load.rpc} x{load.concurrency}: {load.answered} answered, "
                                 f"refused {load.refused}")  # fmt: skip
        left, right = probabilities(a), probabilities(b)
        if left.shape != right.shape or not np.allclose(left, right, rtol=0, atol=1e-9):
            raise SystemExit(f"{a.rpc}: the servers' probabilities differ: {left} vs {right}")


def as_load(row: dict[str, Any]) -> Load:
    """A load run of :mod:`benchmarks.serve_ray`'s results."""
    return Load(**{k: v for k, v in row.items() if k not in ("label", "via")})


def setting_rows(
    served: dict[str, dict[str, list[dict[str, Any]]]], concurrency: int
) -> list[tuple[str, str, Load]]:
    """(mode, setting, load) of the stored-event GetPrediction runs at ``concurrency``."""
    rows = []
    for mode, results in served.items():
        for name, loads in results.items():
            for r in loads:
                if r["label"] == "stored" and r["concurrency"] == concurrency:
                    via = " (direct ingress)" if r["via"] == "direct" else ""
                    rows.append((mode, name + via, as_load(r)))
    return rows


def _ms(value: float) -> str:
    return f"{value:.1f}"


def latency_table(pairs: list[tuple[str, Load, Load]], title: str) -> Table:
    """GetPrediction rows: the plain server, then Serve with its ratios to it."""
    out = Table(
        title=title,
        caption="ratio = Serve / plain server (req/s: higher is better; p50: lower is better); "
        "load = the machine's 1-minute load average when the run ended",
    )
    columns = ("request", "callers", "server", "req/s", "p50 ms", "p99 ms", "load",
               "req/s ratio", "p50 ratio")  # fmt: skip
    for name in columns:
        out.add_column(name, justify="left" if name in ("request", "server") else "right")
    for label, plain, served in pairs:
        out.add_row(label, str(plain.concurrency), "plain grpc.aio", f"{plain.per_second:,.1f}",
                    _ms(plain.p50_ms), _ms(plain.p99_ms), f"{plain.load_average:.1f}",
                    "1.00", "1.00")  # fmt: skip
        out.add_row("", "", "Serve", f"{served.per_second:,.1f}", _ms(served.p50_ms),
                    _ms(served.p99_ms), f"{served.load_average:.1f}",
                    f"{served.per_second / plain.per_second:.2f}",
                    f"{served.p50_ms / plain.p50_ms:.2f}", end_section=True)  # fmt: skip
    return out


def batch_table(rows: int, model_rate: float, runs: list[tuple[str, Load]]) -> Table:
    """BatchPredict rows/s against the model's own predict_proba rows/s."""
    out = Table(
        title=f"BatchPredict of {rows:,} rows ({rows // 3:,} 1X2 markets) per call",
        caption="ratio = rows/s / predict_proba's rows/s on the same rows in one process",
    )
    for name in ("what", "callers", "calls/s", "p50 ms", "load", "rows/s", "ratio"):
        out.add_column(name, justify="left" if name == "what" else "right")
    out.add_row("model predict_proba, in process", "1", "-", "-", "-", f"{model_rate:,.0f}",
                "1.00")  # fmt: skip
    for what, load in runs:
        rate = load.per_second * rows
        out.add_row(what, str(load.concurrency), f"{load.per_second:.2f}", _ms(load.p50_ms),
                    f"{load.load_average:.1f}", f"{rate:,.0f}",
                    f"{rate / model_rate:.3f}")  # fmt: skip
    return out


def settings_table(rows: list[tuple[str, str, Load]], plain: Load | None) -> Table:
    """Each mode and setting, against Serve's default mode and settings."""
    base = rows[0][2]
    out = Table(
        title=f"Serve settings: GetPrediction (stored event), {base.concurrency} callers",
        caption="ratio = req/s / the default mode's with default settings (first row)"
        + ("; plain = req/s / the plain grpc.aio server's" if plain else ""),
    )
    for name in ("mode", "setting", "req/s", "p50 ms", "p99 ms", "load", "ratio", "vs plain"):
        out.add_column(name, justify="left" if name in ("mode", "setting") else "right")
    for mode, setting, load in rows:
        if load.refused:
            setting += f" ({sum(load.refused.values())} refused)"
        vs_plain = f"{load.per_second / plain.per_second:.2f}" if plain else "-"
        out.add_row(mode, setting, f"{load.per_second:,.1f}", _ms(load.p50_ms), _ms(load.p99_ms),
                    f"{load.load_average:.1f}", f"{load.per_second / base.per_second:.2f}",
                    vs_plain)  # fmt: skip
    return out


# --- main -------------------------------------------------------------------------------------

QUICK = {
    "duration": 1.0, "warmup": 0.5, "concurrency": [1, 4], "requests": ["stored"],
    "batch_markets": 20, "batch_concurrency": [1], "modes": ["default"], "knobs": [],
    "batch_rows": 0, "seasons": 2, "teams": 6, "trees": 20,
}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--requests", nargs="+", choices=["stored", "raw"], default=["stored", "raw"]
    )
    parser.add_argument("--batch-markets", type=int, default=500, help="markets per BatchPredict")
    parser.add_argument("--batch-concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--modes", nargs="+", choices=["default", "throughput"],
                        default=["default", "throughput"])  # fmt: skip
    parser.add_argument(
        "--knobs",
        nargs="*",
        default=["ingress-replicas=2", "batch-size=1"],
        help=f"settings beside the defaults: NAME=N[,NAME=N], NAME of {list(KNOBS)}",
    )
    parser.add_argument("--batch-rows", type=int, default=1_000_000,
                        help="rows of benchmarks.batch_predict; 0 skips it")  # fmt: skip
    parser.add_argument("--seasons", type=int, default=3)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--trees", type=int, default=200, help="LightGBM trees")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of Ray")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=120)
    top = max(args.concurrency)
    with tempfile.TemporaryDirectory(prefix="betml-serve-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        model, batch = prepare(folder, args.seasons, args.teams, args.trees, args.seed)
        paths = write_requests(folder, batch, args.batch_markets)
        console.log(f"stored {len(batch.events)} events, trained {model} in "
                    f"{time.perf_counter() - started:.1f} s")  # fmt: skip

        def spec(label: str, concurrency: int) -> LoadSpec:
            rpc = "BatchPredict" if label == "batch" else "GetPrediction"
            return LoadSpec(label=label, rpc=rpc, request=paths[label], concurrency=concurrency)

        main_specs = [spec(r, c) for r in args.requests for c in args.concurrency]
        main_specs += [spec("batch", c) for c in args.batch_concurrency]
        plan = Plan(cpus=args.cpus, duration_s=args.duration, warmup_s=args.warmup,
                    metadata=[f"x-api-key={API_KEY}"], settings=[], workdir=folder)  # fmt: skip
        app_args = serve_args(model, args.batch_markets)
        plain = run_plain(model, app_args, main_specs, plan)
        console.log("plain server: " + ", ".join(
            f"{s.label} x{s.concurrency} {p.per_second:.1f}/s"
            for s, p in zip(main_specs, plain, strict=True)
        ))  # fmt: skip
        served: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for i, mode in enumerate(args.modes):
            loads = main_specs if i == 0 else [spec("stored", c) for c in args.concurrency]
            settings = [Setting(name="default", args=app_args, loads=loads,
                                direct=mode == "throughput")]  # fmt: skip
            settings += [knob_setting(k, model, args.batch_markets, [spec("stored", top)])
                         for k in args.knobs]  # fmt: skip
            served[mode] = run_serve(mode, plan.model_copy(update={"settings": settings}))
            console.log(f"Serve, {mode} mode: done")
        rows, rate = model_rows_per_second(model, paths["batch"], args.duration)
    first_loads = [as_load(r) for r in served[args.modes[0]]["default"] if r["via"] == "proxy"]
    check_same_answers(plain, first_loads)
    pairs = [(s.label, p, f) for s, p, f in zip(main_specs, plain, first_loads, strict=True)]
    console.print(latency_table([x for x in pairs if x[0] != "batch"],
                                f"GetPrediction: Serve ({args.modes[0]} mode) vs a plain "
                                f"grpc.aio server, {args.cpus} CPU(s)"))  # fmt: skip
    batch_runs = [(f"{what}, BatchPredict", load) for label, p, f in pairs if label == "batch"
                  for what, load in (("plain grpc.aio", p), ("Serve", f))]  # fmt: skip
    console.print(batch_table(rows, rate, batch_runs))
    plain_top = next((p for s, p in zip(main_specs, plain, strict=True)
                      if s.label == "stored" and s.concurrency == top), None)  # fmt: skip
    console.print(settings_table(setting_rows(served, top), plain_top))
    if args.batch_rows > 0:
        command = [sys.executable, "-m", "benchmarks.batch_predict", "--rows", str(args.batch_rows),
                   "--cpus", str(args.cpus)]  # fmt: skip
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
