"""``betml predict batch``: Ray Data scoring on the shared local Ray, against the in-process
predictor, with a small LightGBM model registered in a temporary MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from betting.errors import InvalidInput
from betting.features import build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from cluster import tracking
from cluster.artifacts import ArtifactMeta, Predictor, load_predictor, save_artifact
from cluster.training import split_holdout
from ensembles.fit import PREDICTOR_PATH, fit_ensemble
from serve.batch import (
    MARKET_KEYS,
    BatchOptions,
    BatchSummary,
    FileWriter,
    ModelPackage,
    Sink,
    Source,
    TableWriter,
    score_batch,
)

PARAMS = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 20}}}
MODEL = "betml-lightgbm-football-1x2"
SELECTION_KEYS = [*MARKET_KEYS, "selection"]


@pytest.fixture(scope="module")
def selections() -> pd.DataFrame:
    """Two simulated seasons of a 10-team league: featurised 1X2 selections, rows shuffled so
    that the rows of a market are scattered over the frame (and over any files cut from it)."""
    frame = build_features(selection_frame(simulate("football", 2, seed=5, teams=10)))
    frame = frame[frame["market_key"] == "1x2"]
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def artifact(selections: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LightGBM artifact trained on the first season."""
    from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION

    train, _ = split_holdout(selections, 1)
    meta = ArtifactMeta(family="lightgbm", predictor=PREDICTOR_PATH, sport="football",
                        market="1x2", feature_columns=list(FEATURE_COLUMNS),
                        feature_schema_version=FEATURE_SCHEMA_VERSION)  # fmt: skip
    model = fit_ensemble(train, PARAMS, meta, seed=0)
    return save_artifact(model, tmp_path_factory.mktemp("model") / "lightgbm")


@pytest.fixture
def registered(artifact: Path, mlflow_store: MlflowClient) -> str:
    """The artifact registered as version 1 of ``MODEL`` and made champion; its name."""
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(artifact), "model")
    tracking.register(run.info.run_id, "model", MODEL, holdout_log_loss=0.95, holdout_id="t")
    assert tracking.promote(MODEL).promoted
    return MODEL


@pytest.fixture(scope="module")
def predictor(artifact: Path) -> Predictor:
    return load_predictor(artifact)


def _expected(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The in-process predictor's probabilities of every row of ``frame``, by key."""
    return frame[SELECTION_KEYS].assign(expected=predictor.predict_proba(frame))


def _check(out: pd.DataFrame, predictor: Predictor, frame: pd.DataFrame) -> None:
    """``out`` scores every row of ``frame`` once, as the in-process predictor does."""
    assert len(out) == len(frame)
    joined = out.merge(_expected(predictor, frame), on=SELECTION_KEYS, validate="one_to_one")
    np.testing.assert_allclose(joined["p_model"], joined["expected"], rtol=0, atol=1e-12)
    sums = out.groupby(MARKET_KEYS)["p_model"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    assert (out["model_name"] == MODEL).all() and (out["model_version"] == 1).all()


def _write_parts(frame: pd.DataFrame, folder: Path, cuts: list[int], kind: str) -> Path:
    folder.mkdir()
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(frame)], strict=True)):
        part = frame.iloc[a:b]
        if kind == "csv":
            part.to_csv(folder / f"part-{i}.csv", index=False)
        else:
            part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def _score(
    model: str | ModelPackage, source: str, sink: str, url: str, **options: object
) -> BatchSummary:
    return score_batch(model, Source.parse(source), Sink.parse(sink), database_url=url,
                       options=BatchOptions(**options))  # type: ignore[arg-type]  # fmt: skip


def test_parquet_in_parquet_out_equals_in_process_predictor(
    ray_local: object, registered: str, predictor: Predictor, selections: pd.DataFrame,
    tmp_path: Path,
) -> None:  # fmt: skip
    source = _write_parts(selections, tmp_path / "in", [len(selections) // 2], "parquet")
    summary = _score(registered, str(source), str(tmp_path / "out.parquet"), "sqlite://")

    out = pd.read_parquet(tmp_path / "out.parquet")
    _check(out, predictor, selections)
    markets = selections.groupby(MARKET_KEYS).ngroups
    assert (summary.rows, summary.markets, summary.model_version) == (len(selections), markets, 1)
    assert summary.destination == str(tmp_path / "out.parquet")
    assert {"selection", "participant", "starts_at", "season"} <= set(out.columns)
    assert not list(tmp_path.glob(".*"))  # no temporary file left beside the output


def test_market_across_a_naive_batch_boundary_is_scored_whole(
    ray_local: object, artifact: Path, predictor: Predictor, selections: pd.DataFrame,
    tmp_path: Path,
) -> None:  # fmt: skip
    """One market's rows sit at the end of the first file and the start of the second: a
    batch per file (or any row-count batching) would normalise its halves separately."""
    from serve.batch import package_artifact

    ordered = selections.sort_values(SELECTION_KEYS).reset_index(drop=True)
    cut = 3 * 40 + 1  # the 41st market: one row in the first file, two in the second
    split_market = tuple(ordered.loc[cut, MARKET_KEYS])
    naive = predictor.predict_proba(ordered.iloc[:cut])
    assert naive[-1] == pytest.approx(1.0)  # the truncated market alone "sums to 1"
    source = _write_parts(ordered, tmp_path / "in", [cut], "parquet")
    package = package_artifact(artifact, name=MODEL, version=1)

    summary = _score(package, str(source), str(tmp_path / "out"), "sqlite://", rows_per_batch=200)

    assert summary.partitions == 3
    out = pd.read_parquet(tmp_path / "out")  # a folder of parts, one per non-empty batch
    assert 1 < len(list((tmp_path / "out").glob("part-*.parquet"))) <= summary.partitions
    _check(out, predictor, ordered)
    market = out.set_index(MARKET_KEYS).loc[split_market, "p_model"]
    assert len(market) == 3 and market.sum() == pytest.approx(1.0)


def test_csv_in_csv_out(
    ray_local: object, registered: str, predictor: Predictor, selections: pd.DataFrame,
    tmp_path: Path,
) -> None:  # fmt: skip
    source = _write_parts(selections, tmp_path / "in", [100, 400], "csv")
    _score(f"{registered}@champion", str(source), str(tmp_path / "out.csv"), "sqlite://")

    out = pd.read_csv(tmp_path / "out.csv")
    _check(out, predictor, selections)


def test_sql_query_in_table_out_atomically(
    ray_local: object, registered: str, predictor: Predictor, selections: pd.DataFrame,
    tmp_path: Path,
) -> None:  # fmt: skip
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(url)
    selections.to_sql("features", engine, index=False)
    season = selections["season"].max()
    query = f"sql:SELECT * FROM features WHERE season = '{season}'"

    summary = _score(f"{registered}/1", query, "table:predictions", url)

    out = pd.read_sql("SELECT * FROM predictions", engine)
    _check(out, predictor, selections[selections["season"] == season])
    assert summary.destination == "table predictions"
    assert inspect(engine).get_table_names() == ["features", "predictions"]  # no staging left
    with pytest.raises(InvalidInput, match="table predictions exists"):
        _score(registered, query, "table:predictions", url)
    _score(registered, "table:features", "table:predictions", url, if_exists="append")
    assert pd.read_sql("SELECT COUNT(*) AS n FROM predictions", engine)["n"][0] == len(out) + len(
        selections
    )
    assert inspect(engine).get_table_names() == ["features", "predictions"]


def test_missing_feature_column_is_refused_before_any_work(
    registered: str, selections: pd.DataFrame, tmp_path: Path
) -> None:
    selections.drop(columns=["elo_diff"]).to_parquet(tmp_path / "in.parquet", index=False)
    selections.to_parquet(tmp_path / "all.parquet", index=False)

    with pytest.raises(InvalidInput, match=r"lacks column\(s\) \['elo_diff'\]"):
        _score(registered, str(tmp_path / "in.parquet"), str(tmp_path / "out"), "sqlite://")
    with pytest.raises(InvalidInput, match="append is for tables"):
        _score(registered, str(tmp_path / "all.parquet"), "out", "sqlite://", if_exists="append")
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_the_destination_as_it_was(tmp_path: Path) -> None:
    batch = pa.table({"event_key": ["e"], "market_key": ["1x2"], "p_model": [1.0]})
    (tmp_path / "out.parquet").write_text("the previous output")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for writer in (FileWriter(tmp_path / "out.parquet", "parquet"),
                   TableWriter(url, "predictions", "fail")):  # fmt: skip
        writer.write(batch)
        writer.abort()  # what score_batch does when scoring fails half-way
    assert (tmp_path / "out.parquet").read_text() == "the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "store.db"]
    assert inspect(create_engine(url)).get_table_names() == []


def test_betml_predict_batch_end_to_end(
    ray_local: object, registered: str, predictor: Predictor, selections: pd.DataFrame,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from cluster.cli import app

    selections.to_parquet(tmp_path / "features.parquet", index=False)
    runner = CliRunner()
    args = ["predict", "batch", "--input", str(tmp_path / "features.parquet"),
            "--output", "table:predictions", "--model", f"{registered}@champion"]  # fmt: skip

    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    markets = selections.groupby(MARKET_KEYS).ngroups
    assert f"scored {len(selections):,} selections in {markets:,} markets" in result.output
    assert f"{MODEL} version 1" in result.output and "wrote table predictions" in result.output
    engine = create_engine(f"sqlite:///{tmp_path / 'betml.db'}")  # the settings' DATABASE_URL
    _check(pd.read_sql("SELECT * FROM predictions", engine), predictor, selections)

    again = runner.invoke(app, args)
    assert isinstance(again.exception, InvalidInput) and "exists" in str(again.exception)
    unknown = runner.invoke(app, [*args[:-1], f"{registered}@nobody", "--if-exists", "replace"])
    assert "has no alias 'nobody'" in str(unknown.exception)
