"""The cluster definitions in cluster/deploy, checked against the project itself: they parse, have
the fields KubeRay and the launcher need, and agree with the Serve app, the CLI, the configs, the
image and the installed Ray."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from cluster.cli.jobs import parse_command
from serve.app import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, GRPC_SERVICER_FUNCTION
from serve.deploy import load_serve_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "cluster" / "deploy"
KUBERAY = DEPLOY / "kuberay"
LOCAL_SERVE = REPO / "configs" / "serve" / "local.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"ghcr.io/betml/betml:{VERSION}"
WORKDIR = "/home/ray/betml"  # the image's WORKDIR: where the code and configs are
SECRET_KEYS = {"DATABASE_URL", "MLFLOW_TRACKING_URI", "BETML_API_KEY"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(kind: str) -> dict[str, Any]:
    found = [d for p in sorted(KUBERAY.glob("*.yaml")) for d in _docs(p) if d["kind"] == kind]
    assert len(found) == 1, f"one {kind} in {KUBERAY}"
    return found[0]


def _cluster_specs() -> dict[str, dict[str, Any]]:
    return {
        "RayCluster": _one("RayCluster")["spec"],
        "RayJob": _one("RayJob")["spec"]["rayClusterSpec"],
        "RayService": _one("RayService")["spec"]["rayClusterConfig"],
    }


def _ray_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_parses_and_names_itself(path: Path) -> None:
    docs = _docs(path)
    assert docs
    for doc in docs:
        if path.parent == KUBERAY:
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_every_ray_cluster_runs_the_installed_ray_with_token_auth_and_betml_s_image() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(
        rf"^FROM rayproject/ray:{re.escape(ray.__version__)}-py311\b", dockerfile, re.M
    )
    assert re.search(rf"^WORKDIR {WORKDIR}$", dockerfile, re.M)
    for kind, spec in _cluster_specs().items():
        assert spec["rayVersion"] == ray.__version__, kind
        assert spec["authOptions"] == {"mode": "token"}, kind
        assert spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0", kind
        for container in _ray_containers(spec):
            assert container["image"] == IMAGE, f"{kind}/{container['name']}"
        for group in spec["workerGroupSpecs"]:
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], kind
    assert _cluster_specs()["RayCluster"]["enableInTreeAutoscaling"] is True


def test_every_ray_container_gets_betml_s_settings_and_secrets_by_reference() -> None:
    config_maps = {
        d["metadata"]["name"]: d
        for d in _docs(KUBERAY / "betml-config.yaml")
        if d["kind"] == "ConfigMap"
    }
    claims = {d["metadata"]["name"] for d in _docs(KUBERAY / "betml-config.yaml")}
    for kind, spec in _cluster_specs().items():
        for container in _ray_containers(spec):
            where = f"{kind}/{container['name']}"
            refs = [e["configMapRef"]["name"] for e in container["envFrom"]]
            assert refs and all(name in config_maps for name in refs), where
            secrets = {
                e["name"]: e["valueFrom"]["secretKeyRef"]
                for e in container["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            assert set(secrets) == SECRET_KEYS, where
            assert all(ref["key"] == name for name, ref in secrets.items()), where
            assert not SECRET_KEYS & {e["name"] for e in container["env"] if "value" in e}, where
        volumes = spec["headGroupSpec"]["template"]["spec"]["volumes"]
        assert {v["persistentVolumeClaim"]["claimName"] for v in volumes} <= claims, kind
    assert not SECRET_KEYS & set(next(iter(config_maps.values()))["data"]), "secrets stay secret"


def test_the_rayservice_serves_the_local_application_on_betml_s_ports() -> None:
    service = _one("RayService")["spec"]
    serve_config = yaml.safe_load(service["serveConfigV2"])
    local = yaml.safe_load(LOCAL_SERVE.read_text())

    assert serve_config["applications"] == local["applications"]
    assert (
        serve_config["http_options"]["port"] == local["http_options"]["port"] == DEFAULT_HTTP_PORT
    )
    assert (
        serve_config["grpc_options"]["port"] == local["grpc_options"]["port"] == DEFAULT_GRPC_PORT
    )
    assert serve_config["grpc_options"]["grpc_servicer_functions"] == [GRPC_SERVICER_FUNCTION]
    assert serve_config["http_options"]["host"] == "0.0.0.0", "reachable from the Service"
    exposed = {p["port"]: p["targetPort"] for p in service["serveService"]["spec"]["ports"]}
    assert exposed == {DEFAULT_HTTP_PORT: DEFAULT_HTTP_PORT, DEFAULT_GRPC_PORT: DEFAULT_GRPC_PORT}
    for container in _ray_containers(service["rayClusterConfig"]):
        ports = {p["containerPort"] for p in container["ports"]}
        assert {DEFAULT_HTTP_PORT, DEFAULT_GRPC_PORT} <= ports, container["name"]
    assert service["upgradeStrategy"] == {"type": "NewCluster"}, "blue/green cluster upgrades"


def test_the_rayservice_serve_config_passes_betml_s_own_checks(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(_one("RayService")["spec"]["serveConfigV2"])
    assert [a.name for a in load_serve_config(path).applications] == ["betml"]


def test_the_rayservice_submits_training_to_its_own_jobs_api() -> None:
    service = _one("RayService")
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in head["containers"][0]["env"]}
    assert env["RAY_API_SERVER_ADDRESS"] == f"http://{service['metadata']['name']}-head-svc:8265"


def test_the_rayjob_runs_a_real_betml_sweep_on_a_config_that_exists() -> None:
    job = _one("RayJob")["spec"]
    words = shlex.split(job["entrypoint"])
    assert words[:3] == ["python", "-m", "cluster.cli"]
    command = words[3:]
    assert command[:2] == ["sweep", "ensemble"]
    parse_command(command)
    config = Path(command[command.index("--config") + 1])
    assert config.is_relative_to(WORKDIR) and (REPO / config.relative_to(WORKDIR)).is_file()
    assert job["shutdownAfterJobFinishes"] is True
    assert yaml.safe_load(job["runtimeEnvYAML"])["env_vars"]


def test_the_launcher_cluster_autoscales_cpu_workers_with_token_auth() -> None:
    launcher = yaml.safe_load((DEPLOY / "cluster.yaml").read_text())
    assert launcher["docker"]["image"] == IMAGE
    types = launcher["available_node_types"]
    assert launcher["head_node_type"] in types
    workers = types["cpu-workers"]
    assert 0 <= workers["min_workers"] < workers["max_workers"] <= launcher["max_workers"]
    run_options = " ".join(launcher["docker"]["run_options"])
    assert "RAY_AUTH_MODE=token" in run_options and "RAY_AUTH_TOKEN_PATH" in run_options
    token_path = run_options.split("RAY_AUTH_TOKEN_PATH=", 1)[1].split()[0]
    assert token_path in launcher["file_mounts"], "the token is copied to every node"
    assert "--dashboard-host=0.0.0.0" in " ".join(launcher["head_start_ray_commands"])
