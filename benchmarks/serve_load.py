"""The serving benchmark's load: N concurrent ``grpc.aio`` callers of one RPC for a fixed time.

How to run (``benchmarks.serve`` runs it in its own process, so that the client does not share
a GIL with the server it measures)::

    python -m benchmarks.serve_load --target 127.0.0.1:9000 --rpc GetPrediction \\
        --request request.bin --concurrency 16 --duration 10 --warmup 2 --out load.json

Each of ``--concurrency`` callers sends the same request back to back on one shared channel,
first for ``--warmup`` seconds (not counted), then for ``--duration`` seconds. The result (JSON,
:class:`Load`) holds the answered requests, the refused ones by status code, and the latency
percentiles of the answered ones.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.message import Message

from serve.proto.betml.v1 import ml_service_pb2 as pb

#: Request and response messages of each RPC the benchmark calls.
RPCS: dict[str, tuple[type[Message], type[Message]]] = {
    "GetPrediction": (pb.GetPredictionRequest, pb.GetPredictionResponse),
    "BatchPredict": (pb.BatchPredictRequest, pb.BatchPredictResponse),
    "HealthCheck": (pb.HealthCheckRequest, pb.HealthCheckResponse),
}
_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    rpc: str
    concurrency: int
    seconds: float
    answered: int
    refused: dict[str, int] = field(default_factory=dict)
    """Refused calls by gRPC status code name."""
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    answer: str = ""
    """The first answer of the measured run, serialized, base64 (to check what was answered)."""
    load_average: float = float("nan")
    """The machine's 1-minute load average when the run ended (others' work skews the run)."""

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds


async def _caller(
    call: grpc.aio.UnaryUnaryMultiCallable,
    request: Message,
    metadata: tuple[tuple[str, str], ...],
    until: float,
    latencies: list[float],
    refused: Counter[str],
    answers: list[Message],
) -> None:
    while (start := time.perf_counter()) < until:
        try:
            response = await call(request, metadata=metadata, timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as e:
            refused[e.code().name] += 1
        else:
            latencies.append(time.perf_counter() - start)
            if not answers:
                answers.append(response)


async def run_load(
    target: str,
    rpc: str,
    request: Message,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Load:
    """Call ``rpc`` of ``betml.v1.MLService`` at ``target`` from ``concurrency`` callers."""
    response = RPCS[rpc][1]
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(
            f"/betml.v1.MLService/{rpc}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        for phase, seconds in (("warmup", warmup_s), ("measured", duration_s)):
            latencies: list[float] = []
            refused: Counter[str] = Counter()
            answers: list[Message] = []
            started = time.perf_counter()
            until = started + seconds
            await asyncio.gather(
                *(_caller(call, request, metadata, until, latencies, refused, answers)
                  for _ in range(concurrency))
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            if phase == "measured":
                ms = np.asarray(latencies) * 1000
                p50, p99 = np.percentile(ms, [50, 99]) if len(ms) else (float("nan"),) * 2
                first = base64.b64encode(answers[0].SerializeToString()).decode() if answers else ""
                return Load(rpc, concurrency, elapsed, len(latencies), dict(refused),
                            float(p50), float(p99), first, os.getloadavg()[0])  # fmt: skip
    raise AssertionError("unreachable")


def spawn_load(
    target: str,
    rpc: str,
    request: Path,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    metadata: list[str],
    workdir: Path,
) -> Load:
    """:func:`run_load` in a new process (``request``: the serialized request message)."""
    out = Path(tempfile.mkstemp(prefix="load-", suffix=".json", dir=workdir)[1])
    command = [
        sys.executable, "-m", "benchmarks.serve_load", "--target", target, "--rpc", rpc,
        "--request", str(request), "--concurrency", str(concurrency),
        "--duration", str(duration_s), "--warmup", str(warmup_s), "--out", str(out),
        "--metadata", *metadata,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the load client failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Load(**json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--rpc", choices=sorted(RPCS), required=True)
    parser.add_argument("--request", type=Path, required=True, help="serialized request message")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--metadata", nargs="*", default=[], help="key=value pairs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    request = RPCS[args.rpc][0].FromString(args.request.read_bytes())
    metadata = tuple(tuple(pair.split("=", 1)) for pair in args.metadata)
    load = asyncio.run(
        run_load(args.target, args.rpc, request, concurrency=args.concurrency,
                 duration_s=args.duration, warmup_s=args.warmup, metadata=metadata)  # type: ignore[arg-type]
    )  # fmt: skip
    args.out.write_text(json.dumps(asdict(load)))


if __name__ == "__main__":
    main()
