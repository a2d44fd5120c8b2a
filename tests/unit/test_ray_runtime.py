"""What connect() sends to a cluster, and how it finds the token, without starting Ray."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from ray._private.runtime_env.packaging import _zip_files

from betting.errors import ConfigError
from cluster.ray_runtime import (
    GIT_COMMIT_ENV,
    JOB_EXCLUDES,
    NO_RLLIB_TF_ENV_VARS,
    build_runtime_env,
    check_token_auth,
    find_auth_token,
    repo_root,
)

ADDRESS = "head:6379"


def write_token(home: Path) -> None:
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("t0ken")


def test_repo_root_holds_the_packages() -> None:
    assert (repo_root() / "betting").is_dir() and (repo_root() / "cluster").is_dir()


def test_token_sources_in_rays_order(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    write_token(tmp_path / "home")
    home = tmp_path / "home"
    assert find_auth_token(
        {"RAY_AUTH_TOKEN": "x", "RAY_AUTH_TOKEN_PATH": str(token_file)}, home
    ) == ("RAY_AUTH_TOKEN")
    assert find_auth_token({"RAY_AUTH_TOKEN_PATH": str(token_file)}, home) == (
        f"RAY_AUTH_TOKEN_PATH={token_file}"
    )
    assert find_auth_token({}, home) == str(home / ".ray" / "auth_token")
    assert find_auth_token({}, tmp_path / "nobody") is None


def test_a_token_path_to_nothing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RAY_AUTH_TOKEN_PATH=.*missing"):
        find_auth_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, tmp_path)


def test_token_mode_without_a_token_names_every_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_token_auth(ADDRESS, {"RAY_AUTH_MODE": "token"}, tmp_path)
    message = str(caught.value)
    for needed in (ADDRESS, "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token"):
        assert needed in message


def test_token_mode_decides_whether_a_token_is_used(tmp_path: Path) -> None:
    write_token(tmp_path)
    token_home = str(tmp_path / ".ray" / "auth_token")
    assert check_token_auth(ADDRESS, {"RAY_AUTH_MODE": "token"}, tmp_path) == token_home
    assert check_token_auth(ADDRESS, {}, tmp_path) == token_home, "a token found is used"
    assert check_token_auth(ADDRESS, {"RAY_AUTH_MODE": "disabled"}, tmp_path) is None
    assert check_token_auth(ADDRESS, {}, tmp_path / "nobody") is None, "the cluster decides"


def test_cluster_runtime_env_ships_the_repository_and_worker_settings() -> None:
    env = build_runtime_env(
        {"env_vars": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "excludes": ["notebooks/"]},
        ship_code=True,
        environ={},
    )
    assert env["working_dir"] == str(repo_root())
    assert env["excludes"] == [*JOB_EXCLUDES, "notebooks/"]
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["env_vars"].items() >= NO_RLLIB_TF_ENV_VARS.items()
    assert env["env_vars"][GIT_COMMIT_ENV]


def test_local_runtime_env_ships_no_code_and_callers_win() -> None:
    env = build_runtime_env(
        {"env_vars": {GIT_COMMIT_ENV: "abc"}, "pip": ["x"]},
        ship_code=False,
        keep_tensorflow_out_of_rllib=False,
        environ={},
    )
    assert env == {"pip": ["x"], "env_vars": {GIT_COMMIT_ENV: "abc"}}


def test_inside_a_submitted_job_nothing_the_job_has_is_repeated() -> None:
    job = {"runtime_env": {"working_dir": "gcs://pkg.zip", "env_vars": {GIT_COMMIT_ENV: "abc"}}}
    env = build_runtime_env(
        None, ship_code=True, environ={"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job)}
    )
    assert "working_dir" not in env and "excludes" not in env
    assert env["env_vars"] == dict(NO_RLLIB_TF_ENV_VARS)


def test_the_shipped_working_dir_is_code_only(tmp_path: Path) -> None:
    package = tmp_path / "working_dir.zip"
    _zip_files(str(repo_root()), list(JOB_EXCLUDES), str(package), include_gitignore=False)
    with zipfile.ZipFile(package) as zipped:
        names = zipped.namelist()
    assert "betting/__init__.py" in names and "cluster/ray_runtime.py" in names
    unwanted = (".venv/", ".git/", "var/", "tests/fixtures/", ".mypy_cache/")
    assert not [n for n in names if n.startswith(unwanted) or "__pycache__" in n]
    assert package.stat().st_size < 20 * 1024 * 1024


def test_current_submission_id_comes_from_the_job_config() -> None:
    from cluster.ray_runtime import current_submission_id

    config = {"runtime_env": {}, "metadata": {"job_submission_id": "betml-sweep-1"}}
    assert current_submission_id({"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(config)}) == (
        "betml-sweep-1"
    )
    assert current_submission_id({}) is None
    assert current_submission_id({"RAY_JOB_CONFIG_JSON_ENV_VAR": "not json"}) is None
