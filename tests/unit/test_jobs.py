"""Ray Jobs without a cluster: the address and token rules, job ids, commands and runtime env."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from betting.errors import ConfigError, InvalidInput
from cluster import jobs
from cluster.cli import app
from cluster.cli.jobs import parse_command
from cluster.ray_runtime import repo_root


def test_an_explicit_address_wins_then_the_api_server_then_an_http_ray_address() -> None:
    env = {"RAY_API_SERVER_ADDRESS": "http://api:8265/", "RAY_ADDRESS": "http://ray:8265"}
    assert jobs.resolve_address("https://given:443/", env) == "https://given:443"
    assert jobs.resolve_address(None, env) == "http://api:8265"
    assert jobs.resolve_address(None, {"RAY_ADDRESS": "http://ray:8265"}) == "http://ray:8265"


@pytest.mark.parametrize("ray_address", ["", "auto", "ray://head:10001", "10.0.0.1:6379"])
def test_no_jobs_address_names_what_to_set(ray_address: str) -> None:
    with pytest.raises(ConfigError, match="RAY_API_SERVER_ADDRESS"):
        jobs.resolve_address(None, {"RAY_ADDRESS": ray_address})


def test_an_address_that_is_not_the_jobs_api_is_refused() -> None:
    with pytest.raises(InvalidInput, match="address='ray://head:10001'"):
        jobs.resolve_address("ray://head:10001", {})
    with pytest.raises(InvalidInput, match="RAY_API_SERVER_ADDRESS='head:6379'"):
        jobs.resolve_address(None, {"RAY_API_SERVER_ADDRESS": "head:6379"})


def test_the_token_comes_from_ray_s_three_places_in_ray_s_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")

    assert jobs.read_auth_token({"RAY_AUTH_TOKEN": "from-env"}, home) == (
        "from-env",
        "RAY_AUTH_TOKEN",
    )
    by_path = jobs.read_auth_token({"RAY_AUTH_TOKEN_PATH": str(token_file)}, home)
    assert by_path == ("from-file", f"RAY_AUTH_TOKEN_PATH={token_file}")
    assert jobs.read_auth_token({}, home) == ("from-home", str(home / ".ray" / "auth_token"))
    assert jobs.read_auth_token({"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "x"}, home) is None
    assert jobs.read_auth_token({}, tmp_path / "nobody") is None
    with pytest.raises(ConfigError, match="names no token file"):
        jobs.read_auth_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, home)


def test_submission_ids_are_readable_and_unique() -> None:
    now = datetime(2026, 11, 23, 14, 25, 1, tzinfo=UTC)
    command = ["sweep", "ensemble", "--config", "configs/sweeps/lightgbm.yaml"]
    first = jobs.new_submission_id(command, now=now)
    assert first.startswith("betml-sweep-ensemble-20261123-142501-") and len(first) == 41
    assert jobs.new_submission_id(command, now=now) != first
    named = jobs.new_submission_id(command, "Nightly LightGBM!", now=now)
    assert named.startswith("betml-nightly-lightgbm-20261123-142501-")
    assert jobs.new_submission_id(["backtest", "--config", "x"], now=now).startswith(
        "betml-backtest-2026"
    )
    with pytest.raises(InvalidInput, match="'!!'"):
        jobs.new_submission_id(command, "!!")


def test_only_betml_commands_that_run_on_a_cluster_are_submitted() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    top_level = set(root.list_commands(typer.Context(root)))
    assert top_level >= jobs.JOB_COMMANDS
    assert {"serve", "submit", "jobs"} <= top_level - jobs.JOB_COMMANDS
    for refused in ([], ["serve", "up"], ["submit", "sweep"], ["jobs", "list"]):
        with pytest.raises(InvalidInput):
            jobs.check_command(refused)
    assert jobs.entrypoint_for(["sweep", "ensemble", "--config", "a b.yaml"]) == (
        "python -m cluster.cli sweep ensemble --config 'a b.yaml'"
    )


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["sweep"], "needs a subcommand: one of ensemble"),
        (["sweep", "nope"], "has no command 'nope'"),
        (["sweep", "ensemble", "--bogus"], "No such option: --bogus"),
        (["sweep", "ensemble", "--trials", "many"], "--trials"),
    ],
)
def test_a_command_the_cli_would_refuse_is_refused_before_submitting(
    command: list[str], reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_command(command)


def test_a_valid_command_parses() -> None:
    parse_command(["sweep", "ensemble", "--config", "configs/sweeps/demo-lightgbm.yaml"])
    parse_command(["data", "simulate", "--seasons", "2"])


def test_the_runtime_env_ships_the_repository_and_optionally_the_pinned_requirements() -> None:
    env = jobs.job_runtime_env({"DATABASE_URL": "postgresql+psycopg://db/betml"})
    assert env["working_dir"] == str(repo_root())
    assert {".venv/", "var/", ".git/", "tests/fixtures/"} <= set(env["excludes"])
    assert env["env_vars"]["DATABASE_URL"] == "postgresql+psycopg://db/betml"
    assert env["env_vars"]["BETML_GIT_COMMIT"] and "pip" not in env
    pinned = jobs.job_runtime_env(pip=True)["pip"]
    assert "ray==2.60.0" in pinned["packages"] and pinned["pip_check"] is False
    assert jobs.job_runtime_env(pip=["requests==2.32.3"])["pip"]["packages"] == ["requests==2.32.3"]


def test_a_record_knows_when_it_is_over() -> None:
    start = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    done = jobs.JobRecord(
        submission_id="betml-x",
        status=jobs.SUCCEEDED,
        entrypoint="python -m cluster.cli data stats",
        start_time=start,
        end_time=start.replace(minute=1),
        metadata={"command": "data stats"},
    )
    assert (
        done.terminal and done.succeeded and done.duration_s == 60 and done.command == "data stats"
    )
    running = jobs.JobRecord(submission_id="betml-y", status=jobs.RUNNING, entrypoint="python -m x")
    assert not running.terminal and running.command == "python -m x" and running.duration_s is None
