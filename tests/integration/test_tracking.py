"""MLflow tracking and registry on a real SQLite store: tags, summaries, aliases, promotion."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from betting.errors import InvalidInput, NotFound
from cluster import tracking
from cluster.ray_runtime import repo_root
from cluster.settings import get_settings
from cluster.tracking import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    SUMMARY_FILE,
    TAG_HOLDOUT_ID,
    TAG_HOLDOUT_LOG_LOSS,
    data_hash,
    download_model,
    list_models,
    log_summary,
    model_name,
    promote,
    register,
    resolve,
    run_tags,
)

NAME = "betml-xgb-football-1x2"


def logged_model(tmp_path: Path, weights: str = "w") -> str:
    """A finished run holding an artifact folder ``model`` with two files; returns its id."""
    folder = Path(tempfile.mkdtemp(prefix="artifact-", dir=tmp_path))
    (folder / "weights.txt").write_text(weights)
    (folder / "betml_artifact.json").write_text(json.dumps({"family": "xgb"}))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    return run.info.run_id


def version_with(tmp_path: Path, log_loss: float, holdout: str = "e0-2023") -> int:
    run_id = logged_model(tmp_path, weights=f"{log_loss}-{holdout}")
    return register(run_id, "model", NAME, holdout_log_loss=log_loss, holdout_id=holdout)


def aliases(client: MlflowClient) -> dict[str, int]:
    return {alias: int(v) for alias, v in client.get_registered_model(NAME).aliases.items()}


def test_configure_mlflow_keeps_artifacts_under_the_data_dir(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    experiment = mlflow_store.get_experiment_by_name("betml-tests")
    assert experiment is not None
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    run_id = logged_model(tmp_path)
    assert mlflow_store.get_run(run_id).info.experiment_id == experiment.experiment_id
    assert list((tmp_path / "mlartifacts").rglob("weights.txt"))


def test_model_names_are_validated() -> None:
    assert model_name("xgb", "football", "1x2") == NAME
    assert model_name("lightgbm", "horse-racing", "win") == "betml-lightgbm-horse-racing-win"
    for family, sport, market in [
        ("XGB", "football", "1x2"),
        ("xgb", "foot ball", "1x2"),
        ("xgb", "football", ""),
        ("xgb", "football", "over_under"),
        ("xgb", "-football", "1x2"),
    ]:
        with pytest.raises(InvalidInput, match="must be lowercase"):
            model_name(family, sport, market)


def test_run_tags_name_data_features_config_and_commit() -> None:
    tags = run_tags(
        data_hash="abc",
        feature_version="v3",
        config={"lr": 0.1, "depth": 4},
        family="xgb",
        sport="football",
        market="1x2",
    )
    same_config = run_tags(
        data_hash="abc",
        feature_version="v3",
        config={"depth": 4, "lr": 0.1},
        family="xgb",
        sport="football",
        market="1x2",
    )
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True
    )
    assert tags[tracking.TAG_DATA_HASH] == "abc"
    assert tags[tracking.TAG_FEATURE_VERSION] == "v3"
    assert tags[tracking.TAG_FAMILY] == "xgb"
    assert tags[tracking.TAG_SPORT] == "football"
    assert tags[tracking.TAG_MARKET] == "1x2"
    assert tags[tracking.TAG_GIT_COMMIT] in {done.stdout.strip(), "unknown"}
    assert tags == same_config, "the config hash ignores key order"
    assert all(key.startswith("betml.") for key in tags)
    with pytest.raises(InvalidInput, match="Football"):
        run_tags(
            data_hash="abc", feature_version="v3", config={}, family="xgb", sport="Football",
            market="1x2",
        )  # fmt: skip


def test_data_hash_follows_content_not_index() -> None:
    frame = pd.DataFrame({"odds": [2.1, 3.4, 3.9], "team": ["ars", "che", "liv"]})
    assert data_hash(frame) == data_hash(frame.copy())
    assert data_hash(frame) == data_hash(frame.set_axis([10, 11, 12]))
    changed = frame.copy()
    changed.loc[1, "odds"] = 3.5
    assert data_hash(changed) != data_hash(frame)
    assert data_hash(frame.rename(columns={"odds": "price"})) != data_hash(frame)
    assert data_hash(frame.iloc[::-1]) != data_hash(frame)
    assert len(data_hash(frame)) == 64


def test_log_summary_writes_a_local_copy_and_a_run_artifact(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    run_id = logged_model(tmp_path)
    summary = {"family": "xgb", "log_loss": np.float64(0.61), "rows": np.int64(1200)}
    path = log_summary(summary, run_id)
    assert path == tmp_path / "storage" / "runs" / run_id / SUMMARY_FILE
    assert json.loads(path.read_text()) == {"family": "xgb", "log_loss": 0.61, "rows": 1200}
    assert SUMMARY_FILE in [a.path for a in mlflow_store.list_artifacts(run_id)]
    fetched = mlflow_store.download_artifacts(run_id, SUMMARY_FILE, str(tmp_path / "dl"))
    assert json.loads(Path(fetched).read_text())["rows"] == 1200
    with pytest.raises(InvalidInput, match="object"):
        log_summary({"bad": object()}, run_id)


def test_register_points_at_the_run_folder_and_makes_a_challenger(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    run_id = logged_model(tmp_path)
    version = register(run_id, "model", NAME, holdout_log_loss=0.6, holdout_id="e0-2023")
    assert version == 1
    registered = mlflow_store.get_model_version(NAME, "1")
    assert registered.source == f"runs:/{run_id}/model"
    assert registered.run_id == run_id
    assert registered.tags == {TAG_HOLDOUT_LOG_LOSS: "0.6", TAG_HOLDOUT_ID: "e0-2023"}
    assert aliases(mlflow_store) == {ALIAS_CHALLENGER: 1}
    assert register(run_id, "model", NAME, holdout_log_loss=0.5, holdout_id="e0-2023") == 2
    assert aliases(mlflow_store) == {ALIAS_CHALLENGER: 2}


def test_register_refuses_bad_input(mlflow_store: MlflowClient, tmp_path: Path) -> None:
    run_id = logged_model(tmp_path)
    with pytest.raises(NotFound, match="no artifact folder 'weights'"):
        register(run_id, "weights", NAME, holdout_log_loss=0.6, holdout_id="h")
    with pytest.raises(InvalidInput, match="nan"):
        register(run_id, "model", NAME, holdout_log_loss=float("nan"), holdout_id="h")
    with pytest.raises(InvalidInput, match="holdout_id"):
        register(run_id, "model", NAME, holdout_log_loss=0.6, holdout_id=" ")
    with pytest.raises(InvalidInput, match="Betml_X"):
        register(run_id, "model", "Betml_X", holdout_log_loss=0.6, holdout_id="h")
    assert mlflow_store.search_registered_models() == []


def test_promotion_needs_a_lower_log_loss_on_the_same_holdout(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    def champion() -> int | None:
        return aliases(mlflow_store).get(ALIAS_CHAMPION)

    version_with(tmp_path, 0.60)
    first = promote(NAME)
    assert first.promoted and first.champion_version is None and "no champion" in first.reason
    assert champion() == 1

    version_with(tmp_path, 0.65)
    worse = promote(NAME)
    assert not worse.promoted and champion() == 1
    assert (worse.challenger_version, worse.challenger_log_loss) == (2, 0.65)
    assert (worse.champion_version, worse.champion_log_loss) == (1, 0.60)
    assert "not lower" in worse.reason

    version_with(tmp_path, 0.60)
    equal = promote(NAME)
    assert not equal.promoted and champion() == 1, "only a strictly lower log loss wins"

    version_with(tmp_path, 0.55)
    better = promote(NAME)
    assert better.promoted and champion() == 4
    assert (better.challenger_log_loss, better.champion_log_loss) == (0.55, 0.60)

    again = promote(NAME)
    assert not again.promoted and "already the champion" in again.reason

    version_with(tmp_path, 0.40, holdout="e0-2024")
    elsewhere = promote(NAME)
    assert not elsewhere.promoted and champion() == 4
    assert "different holdouts" in elsewhere.reason
    assert (elsewhere.challenger_holdout_id, elsewhere.champion_holdout_id) == (
        "e0-2024",
        "e0-2023",
    )

    forced = promote(NAME, force=True)
    assert forced.promoted and forced.reason == "forced" and champion() == 5
    assert forced.champion_version == 4


def test_promote_needs_a_challenger(mlflow_store: MlflowClient) -> None:
    with pytest.raises(NotFound, match="no registered model"):
        promote(NAME)
    mlflow_store.create_registered_model(NAME)
    with pytest.raises(NotFound, match="no challenger"):
        promote(NAME)


def test_list_models_shows_versions_aliases_and_scores(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    version_with(tmp_path, 0.60)
    promote(NAME)
    version_with(tmp_path, 0.62)
    other = model_name("dqn", "football", "1x2")
    register(logged_model(tmp_path, "dqn"), "model", other, holdout_log_loss=0.7, holdout_id="h")
    mlflow_store.create_registered_model("someone-elses-model")

    summaries = list_models()
    assert [s.name for s in summaries] == [other, NAME]
    xgb = summaries[1]
    assert xgb.versions == 2
    assert (xgb.champion_version, xgb.champion_log_loss, xgb.champion_holdout_id) == (
        1, 0.60, "e0-2023",
    )  # fmt: skip
    assert (xgb.challenger_version, xgb.challenger_log_loss) == (2, 0.62)
    assert summaries[0].champion_version is None and summaries[0].challenger_version == 1


def test_resolve_accepts_names_aliases_versions_and_model_uris(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    version_with(tmp_path, 0.60)
    promote(NAME)
    version_with(tmp_path, 0.62)
    assert resolve(NAME) == (NAME, 1), "a bare name means the champion"
    assert resolve(f"{NAME}@{ALIAS_CHALLENGER}") == (NAME, 2)
    assert resolve(f"models:/{NAME}@{ALIAS_CHAMPION}") == (NAME, 1)
    assert resolve(f"models:/{NAME}/2") == (NAME, 2)
    assert resolve(f"{NAME}/1") == (NAME, 1)
    for bad in ["models:/", f"{NAME}@", f"{NAME}@a@b", "models:/Betml-X@champion"]:
        with pytest.raises(InvalidInput):
            resolve(bad)
    for missing in ["betml-none-football-1x2", f"{NAME}@staging", f"{NAME}/9"]:
        with pytest.raises(NotFound):
            resolve(missing)


def test_download_model_fetches_the_version_folder(
    mlflow_store: MlflowClient, tmp_path: Path
) -> None:
    version_with(tmp_path, 0.60)
    promote(NAME)
    version_with(tmp_path, 0.50)
    folder = download_model(f"models:/{NAME}@{ALIAS_CHAMPION}", tmp_path / "serving")
    assert folder.is_dir() and folder.parent == tmp_path / "serving"
    assert sorted(p.name for p in folder.iterdir()) == ["betml_artifact.json", "weights.txt"]
    assert (folder / "weights.txt").read_text() == "0.6-e0-2023"
    assert (download_model(f"{NAME}/2", tmp_path / "v2") / "weights.txt").read_text() == (
        "0.5-e0-2023"
    )


def test_default_client_follows_the_settings(mlflow_store: MlflowClient, tmp_path: Path) -> None:
    version_with(tmp_path, 0.60)
    assert get_settings().mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert [s.name for s in list_models(client=mlflow_store)] == [s.name for s in list_models()]
