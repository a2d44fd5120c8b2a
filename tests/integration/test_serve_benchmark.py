"""The serving benchmark's baseline and load client (no Ray): the plain ``grpc.aio`` server over
``PredictionService`` with an in-process model answers as the model does, and the load client
counts what it measures. (``python -m benchmarks.serve --quick`` itself takes minutes: Ray.)"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest

from benchmarks.serve import KNOBS, knob_setting, probabilities
from benchmarks.serve_load import Load, run_load
from benchmarks.serve_plain import InProcessModel, PlainServicer
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from betting.store import create_engine_for, migrate, session_scope, write_batch
from cluster.artifacts import ArtifactMeta, Predictor
from cluster.settings import get_settings
from cluster.training import split_holdout
from ensembles.fit import PREDICTOR_PATH, fit_ensemble
from serve.config import ServeArgs
from serve.models import LoadedModel
from serve.online import OnlineFeatures, model_input
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc
from serve.service import PredictionService

REF = "betml-lightgbm-football-1x2@champion"


class CountingPredictor:
    """A real predictor that counts its ``predict_proba`` calls."""

    def __init__(self, predictor: Predictor) -> None:
        self.meta = predictor.meta
        self._predictor = predictor
        self.calls = 0

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        return self._predictor.predict_proba(features)


@pytest.fixture(scope="module")
def league() -> object:
    return simulate("football", 2, seed=5, teams=6)


@pytest.fixture(scope="module")
def selections(league: object) -> pd.DataFrame:
    frame = build_features(selection_frame(league))  # type: ignore[arg-type]
    return frame[frame["market_key"] == "1x2"].reset_index(drop=True)


@pytest.fixture(scope="module")
def loaded(selections: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    train, _ = split_holdout(selections, 1)
    meta = ArtifactMeta(family="lightgbm", predictor=PREDICTOR_PATH, sport="football",
                        market="1x2", feature_columns=list(FEATURE_COLUMNS),
                        feature_schema_version=FEATURE_SCHEMA_VERSION)  # fmt: skip
    params = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 10}}}
    predictor = CountingPredictor(fit_ensemble(train, params, meta, seed=0))
    name, alias = REF.split("@")
    folder = tmp_path_factory.mktemp("model")
    return LoadedModel(name, 1, alias, predictor, datetime.now(UTC), folder)  # type: ignore[arg-type]


def test_in_process_model_batches_waiting_requests(
    loaded: LoadedModel, selections: pd.DataFrame
) -> None:
    markets = [model_input(rows) for _, rows in selections.groupby("event_key", sort=False)][:5]
    model = InProcessModel({REF: loaded}, max_batch_size=4)
    counter: CountingPredictor = loaded.predictor  # type: ignore[assignment]
    before = counter.calls

    async def ask() -> list[object]:
        handle = model.options(multiplexed_model_id=REF)
        return await asyncio.gather(*(handle.predict.remote(m) for m in markets))

    answers = asyncio.run(ask())
    assert counter.calls - before == 2  # 4 waiting together, then the fifth
    for market, answer in zip(markets, answers, strict=True):
        alone = counter.predict_proba(market)
        assert np.allclose(answer.probabilities, alone, rtol=0, atol=1e-12)  # type: ignore[attr-defined]
        assert answer.model.version == 1  # type: ignore[attr-defined]
    unknown = asyncio.run(model.options(multiplexed_model_id="nope@x").predict.remote(markets[0]))
    assert unknown.error is not None and "nope@x" in str(unknown.error)


@pytest.fixture
def plain_service(
    league: object, loaded: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PredictionService]:
    url = f"sqlite:///{tmp_path / 'betml.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BETML_ENV", "development")  # reads need no API key
    get_settings.cache_clear()
    engine = create_engine_for(url)
    migrate(engine)
    with session_scope(engine) as session:
        write_batch(session, league)  # type: ignore[arg-type]
    models = {"ensemble": {"families": ["lightgbm"]}}
    args = ServeArgs.model_validate(
        {"models": models, "agent": None, "prediction_log": {"enabled": False}}
    )
    features = OnlineFeatures(lambda: engine)
    yield PredictionService(args, features, {"ensemble": InProcessModel({REF: loaded})})
    engine.dispose()
    get_settings.cache_clear()


def test_plain_server_answers_the_load_client_as_the_model_does(
    plain_service: PredictionService, league: object, selections: pd.DataFrame
) -> None:
    event_key = str(league.events["event_key"].iloc[-1])  # type: ignore[attr-defined]
    request = pb.GetPredictionRequest(event_key=event_key, market_key="1x2")
    missing = pb.GetPredictionRequest(event_key="no-such-event", market_key="1x2")

    async def measure() -> tuple[Load, Load]:
        server = grpc.aio.server()
        pb_grpc.add_MLServiceServicer_to_server(PlainServicer(plain_service), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            target = f"127.0.0.1:{port}"
            good = await run_load(target, "GetPrediction", request, concurrency=3,
                                  duration_s=0.5, warmup_s=0.2)  # fmt: skip
            bad = await run_load(target, "GetPrediction", missing, concurrency=1,
                                 duration_s=0.2, warmup_s=0.0)  # fmt: skip
        finally:
            await server.stop(None)
        return good, bad

    good, bad = asyncio.run(measure())
    assert good.answered > 0 and not good.refused
    assert good.p50_ms <= good.p99_ms and good.per_second > 0
    rows = selections[selections["event_key"] == event_key]
    expected = (
        plain_service.models["ensemble"].models[REF].predictor.predict_proba(model_input(rows))
    )
    assert np.allclose(probabilities(good), expected, rtol=0, atol=1e-12)
    assert bad.answered == 0 and set(bad.refused) == {"NOT_FOUND"} and not bad.answer
    assert pb.GetPredictionResponse.FromString(base64.b64decode(good.answer)).event_key == event_key


def test_knobs_become_serve_options_and_args() -> None:
    setting = knob_setting("ingress-replicas=2,model-max-ongoing=8,batch-size=1", "m", 10, [])
    assert {"name": "Ingress", "num_replicas": 2} in setting.deployments
    assert {"name": "ensemble", "max_ongoing_requests": 8} in setting.deployments
    assert setting.args["models"]["ensemble"]["max_batch_size"] == 1
    ServeArgs.model_validate(setting.args)
    with pytest.raises(SystemExit, match="replicas=two"):
        knob_setting("replicas=two", "m", 10, [])
    assert set(KNOBS) >= {"ingress-replicas", "batch-size"}


def test_tables_show_each_run_against_its_baseline() -> None:
    from rich.console import Console

    from benchmarks.serve import latency_table, settings_table

    plain = Load("GetPrediction", 16, 10.0, 2000, {}, 50.0, 90.0, "", 4.0)
    served = Load("GetPrediction", 16, 10.0, 700, {"UNAVAILABLE": 2}, 200.0, 400.0, "", 5.0)
    console = Console(record=True, width=160)
    console.print(latency_table([("stored", plain, served)], "t"))
    console.print(settings_table([("default", "default", served)], plain))
    text = console.export_text()
    assert "req/s ratio" in text and "load" in text
    assert "0.35" in text and "4.00" in text  # 70/s / 200/s; 200 ms / 50 ms
    assert "default (2 refused)" in text
