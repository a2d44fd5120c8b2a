"""The serving benchmark's Serve side: betml's application on a local Ray, under each setting.

How to run (``benchmarks.serve`` runs it once per mode, each in its own process with its own
local Ray, because ``RAY_SERVE_THROUGHPUT_OPTIMIZED`` is read when Ray starts)::

    RAY_SERVE_THROUGHPUT_OPTIMIZED=1 python -m benchmarks.serve_ray --plan plan.json --out out.json

The plan (:class:`Plan`, JSON) lists settings; for each, the application is deployed as
``betml serve up`` deploys a config file (:func:`serve.deploy.deploy`, with Serve's per-deployment
options and the application's ``args``), waited for until HealthCheck answers SERVING, and the
plan's loads are run against Serve's gRPC proxy by :mod:`benchmarks.serve_load` processes; with
direct ingress on (the throughput-optimized mode), also straight to the ingress replica's own
gRPC port. The store and MLflow come from the environment, as for any betml process.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
import ray
from pydantic import BaseModel, Field
from ray.serve.schema import ServeDeploySchema

from benchmarks.serve_load import Load, spawn_load
from cluster import ray_runtime
from cluster.settings import Settings
from serve.app import GRPC_SERVICER_FUNCTION
from serve.deploy import APP_IMPORT_PATH, deploy, wait_until_deployed
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

APP_NAME = "betml"
_READY_TIMEOUT_S = 300.0


class LoadSpec(BaseModel):
    """One load run: an RPC with a serialized request, at a concurrency."""

    label: str
    rpc: str
    request: Path
    concurrency: int


class Setting(BaseModel):
    """One way of deploying the application."""

    name: str
    args: dict[str, Any]
    """The application's ``args`` (:class:`~serve.config.ServeArgs`)."""
    deployments: list[dict[str, Any]] = Field(default_factory=list)
    """Serve's options per deployment (``name`` and e.g. ``num_replicas``)."""
    loads: list[LoadSpec]
    direct: bool = False
    """Also run the loads straight to the ingress replica when direct ingress is on."""


class Plan(BaseModel):
    """What one Serve process measures."""

    cpus: int
    duration_s: float
    warmup_s: float
    metadata: list[str] = Field(default_factory=list)
    settings: list[Setting]
    workdir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(setting: Setting, http_port: int, grpc_port: int) -> dict[str, Any]:
    """The Serve config file (as a dict) of ``setting``."""
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": http_port},
        "grpc_options": {"port": grpc_port, "grpc_servicer_functions": [GRPC_SERVICER_FUNCTION]},
        "applications": [{
            "name": APP_NAME, "route_prefix": "/", "import_path": APP_IMPORT_PATH,
            "args": setting.args, "deployments": setting.deployments,
        }],
    }  # fmt: skip


def wait_until_serving(target: str, timeout_s: float = _READY_TIMEOUT_S) -> None:
    """Wait until HealthCheck at ``target`` answers SERVING (the models are loaded)."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.MLServiceStub(channel)  # type: ignore[no-untyped-call]
        while True:
            try:
                health = stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
                if health.status == pb.SERVING_STATUS_SERVING:
                    return
            except grpc.RpcError as e:
                logger.info("not serving yet: %s", e)
            if time.monotonic() > deadline:
                raise SystemExit(f"the application at {target} is not serving after {timeout_s} s")
            time.sleep(0.5)


def direct_targets() -> list[str]:
    """host:port of each ingress replica's own gRPC server (direct ingress), else none."""
    from ray.serve._private.common import RequestProtocol
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None, "Serve is running"
    controller = client._controller
    groups = ray.get(controller.get_target_groups.remote(APP_NAME))
    return [f"{t.ip}:{t.port}" for g in groups if g.protocol == RequestProtocol.GRPC
            for t in g.targets]  # fmt: skip


def measure(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """Every setting's loads, by setting name: each a :class:`Load` plus ``label`` and ``via``."""
    http_port, grpc_port = free_port(), free_port()
    proxy = f"127.0.0.1:{grpc_port}"
    results: dict[str, list[dict[str, Any]]] = {}
    for setting in plan.settings:
        started = time.perf_counter()
        deploy(ServeDeploySchema.model_validate(config(setting, http_port, grpc_port)))
        states = wait_until_deployed([APP_NAME], timeout_s=_READY_TIMEOUT_S)
        if states[APP_NAME] != "RUNNING":
            raise SystemExit(f"setting {setting.name!r}: the application is {states[APP_NAME]}")
        wait_until_serving(proxy)
        time.sleep(2.0)  # let replicas being replaced by a redeploy finish stopping
        logger.warning(
            "setting %r serving after %.1f s", setting.name, time.perf_counter() - started
        )
        targets = [("proxy", proxy)]
        if setting.direct:
            targets += [("direct", t) for t in direct_targets()[:1]]
        rows = results.setdefault(setting.name, [])
        for via, target in targets:
            for spec in setting.loads:
                load = spawn_load(
                    target, spec.rpc, spec.request, concurrency=spec.concurrency,
                    duration_s=plan.duration_s, warmup_s=plan.warmup_s,
                    metadata=plan.metadata, workdir=plan.workdir,
                )  # fmt: skip
                rows.append({**asdict(load), "label": spec.label, "via": via})
                logger.warning("%s %s via %s: %s", setting.name, spec.label, via, _short(load))
    return results


def _short(load: Load) -> str:
    return f"{load.per_second:.1f}/s p50 {load.p50_ms:.1f} ms p99 {load.p99_ms:.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    plan = Plan.model_validate_json(args.plan.read_text())
    ray_runtime.connect(Settings(ray_address=None), num_cpus=plan.cpus, log_to_driver=False)
    try:
        results = measure(plan)
    finally:
        from ray import serve

        serve.shutdown()
        ray_runtime.shutdown()
    args.out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
