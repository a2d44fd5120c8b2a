"""End to end: the HTTP routes beyond predictions (features, preprocess, models, visualize),
called with a real HTTP client against the Serve application of ``conftest.served``."""

from __future__ import annotations

import time

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict

from betting.batch import EventBatch
from cluster import tracking
from serve.proto.betml.v1 import ml_service_pb2 as pb
from tests.e2e.conftest import API_KEY, METADATA, MODEL, Served
from tests.serving import as_raw_event

pytestmark = pytest.mark.slow

HEADERS = {"x-api-key": API_KEY}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def event_key(stored: EventBatch) -> str:
    return str(stored.events["event_key"].iloc[-20])


def post(served: Served, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(served.http + path, json=body, timeout=60, **kwargs)  # type: ignore[arg-type]


def get(served: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(served.http + path, timeout=60, **kwargs)  # type: ignore[arg-type]


def violations(response: httpx.Response) -> dict[str, str]:
    return {v["field"]: v["description"] for v in response.json()["field_violations"]}


def test_features_extract_equals_get_features(served: Served, event_key: str) -> None:
    answer = post(served, "/api/v1/features/extract", {"event_key": event_key}, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    grpc_answer = served.stub.GetFeatures(
        pb.GetFeaturesRequest(event_key=event_key), metadata=METADATA, timeout=30
    )
    assert body["feature_names"] == list(grpc_answer.feature_names)
    assert len(body["selections"]) == len(grpc_answer.selections)
    first = np.array(body["selections"][0]["values"], dtype=float)
    assert np.allclose(first, grpc_answer.selections[0].values, equal_nan=True)

    one = post(served, "/api/v1/features/extract", {"event_key": event_key, "market_keys": ["1x2"]},
               headers=HEADERS).json()  # fmt: skip
    assert {s["market_key"] for s in one["selections"]} == {"1x2"}
    both = post(served, "/api/v1/features/extract", {}, headers=HEADERS)
    assert both.status_code == 422 and "exactly one" in both.text
    missing = post(served, "/api/v1/features/extract", {"event_key": "no-such-event"},
                   headers=HEADERS)  # fmt: skip
    assert missing.status_code == 404 and "no-such-event" in missing.text


def test_preprocess_cleans_prices(served: Served, stored: EventBatch, event_key: str) -> None:
    raw = as_raw_event(stored, event_key)
    body = {"raw_event": MessageToDict(raw, preserving_proto_field_name=True)}
    answer = post(served, "/api/v1/preprocess", body, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["event_key"] == event_key and view["sport"] == "football"
    market = next(m for m in view["markets"] if m["market_key"] == "1x2")
    assert market["bookmakers"], market
    for book in market["bookmakers"]:
        assert sum(book["shin"].values()) == pytest.approx(1.0)
        assert sum(book["proportional"].values()) == pytest.approx(1.0)
        assert sum(book["implied"].values()) == pytest.approx(1.0 + book["overround"])
        assert book["overround"] > 0  # simulated bookmakers take a margin
    consensus = [s["consensus_probability"] for s in market["selections"]]
    assert sum(consensus) == pytest.approx(1.0)
    for selection in market["selections"]:
        prices = [b["odds"][selection["selection"]] for b in market["bookmakers"]]
        assert selection["best_odds"] >= max(prices)

    stored_view = post(served, "/api/v1/preprocess", {"event_key": event_key}, headers=HEADERS)
    assert stored_view.json()["markets"][0]["market_key"] == view["markets"][0]["market_key"]
    unknown = post(served, "/api/v1/preprocess", {"event_key": event_key, "market_keys": ["x"]},
                   headers=HEADERS)  # fmt: skip
    assert unknown.status_code == 404 and "'x'" in unknown.text
    body["raw_event"]["markets"][0]["selections"][0]["odds"][0]["price"] = 0.5
    bad = post(served, "/api/v1/preprocess", body, headers=HEADERS)
    assert bad.status_code == 422
    assert "raw_event.markets[0].selections[0].odds[0].price" in violations(bad)


def test_models_list_and_promote(served: Served) -> None:
    listed = get(served, "/api/v1/models", headers=HEADERS)
    assert listed.status_code == 200, listed.text
    models = {m["name"]: m for m in listed.json()["models"]}
    champion = models[MODEL]["champion"]
    assert champion["version"] >= 1 and champion["score"] > 0

    refused = post(served, f"/api/v1/models/{MODEL}/promote", {})
    assert refused.status_code == 401
    decision = post(served, f"/api/v1/models/{MODEL}/promote", {}, headers=HEADERS)
    assert decision.status_code == 200, decision.text
    verdict = decision.json()
    _, version = tracking.resolve(MODEL, client=served.client)
    if verdict["promoted"]:  # an earlier test left a better challenger
        assert verdict["challenger_version"] == version
    else:
        assert verdict["reason"]
    unknown = post(served, "/api/v1/models/betml-lightgbm-nosport-1x2/promote", {},
                   headers=HEADERS)  # fmt: skip
    assert unknown.status_code == 404
    bad = post(served, f"/api/v1/models/{MODEL}/promote", {"force": "maybe"}, headers=HEADERS)
    assert bad.status_code == 422 and "force" in violations(bad)


def test_models_show_live_scores_of_settled_predictions(served: Served, event_key: str) -> None:
    answer = served.stub.GetPrediction(
        pb.GetPredictionRequest(event_key=event_key, market_key="1x2"), metadata=METADATA,
        timeout=30,
    )  # fmt: skip
    version = answer.model.version
    deadline = time.monotonic() + 30
    while True:  # the prediction log writes in the background, about every second
        models = get(served, "/api/v1/models", params={"refresh": "true"}, headers=HEADERS)
        live = {m["name"]: m["live"] for m in models.json()["models"]}[MODEL]
        scored = {row["model_version"]: row for row in live}
        if version in scored or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    row = scored[version]
    assert row["markets"] >= 1 and row["log_loss"] > 0 and 0 <= row["ece"] <= 1


def test_training_needs_a_cluster_with_the_jobs_api(served: Served) -> None:
    # The test application runs on a local Ray without a dashboard: no Jobs API to submit to.
    body = {"family": "ensemble", "config": "configs/sweeps/demo-lightgbm.yaml", "trials": 2}
    refused = post(served, "/api/v1/models/train", body, headers=HEADERS)
    assert refused.status_code == 503 and "training jobs cannot be submitted" in refused.text
    assert post(served, "/api/v1/models/train", body).status_code == 401
    outside = post(served, "/api/v1/models/train", {**body, "config": "../../etc/passwd.yaml"},
                   headers=HEADERS)  # fmt: skip
    assert outside.status_code == 422 and "config" in violations(outside)
    trials = post(served, "/api/v1/models/train", {**body, "mode": "train"}, headers=HEADERS)
    assert trials.status_code == 422 and "trials" in trials.text


def test_training_rpcs_refuse_clearly_without_a_jobs_api(served: Served) -> None:
    start = pb.StartTrainingRequest(family="ensemble", config="configs/sweeps/demo-lightgbm.yaml")
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.StartTraining(start, timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # writes always need the key
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.StartTraining(start, metadata=METADATA, timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "training jobs cannot be submitted" in (caught.value.details() or "")
    bad = pb.StartTrainingRequest(family="boosting", config="configs/../secrets.yaml")
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.StartTraining(bad, metadata=METADATA, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "family" in (caught.value.details() or "") and "config" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.GetTrainingJob(pb.GetTrainingJobRequest(), metadata=METADATA, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_feature_importance_chart(served: Served) -> None:
    data = get(served, f"/api/v1/visualize/feature-importance/{MODEL}",
               params={"format": "json", "top": 5}, headers=HEADERS)  # fmt: skip
    assert data.status_code == 200, data.text
    body = data.json()
    assert body["model_name"] == MODEL and len(body["features"]) == 5
    scores = [f["importance"] for f in body["features"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    chart = get(served, f"/api/v1/visualize/feature-importance/{MODEL}@champion", headers=HEADERS)
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(PNG)
    missing = get(served, "/api/v1/visualize/feature-importance/betml-lightgbm-nosport-1x2",
                  headers=HEADERS)  # fmt: skip
    assert missing.status_code == 404
    bad = get(served, f"/api/v1/visualize/feature-importance/{MODEL}", params={"format": "gif"},
              headers=HEADERS)  # fmt: skip
    assert bad.status_code == 422 and "query.format" in violations(bad)


def test_training_progress_chart(served: Served) -> None:
    name, version = tracking.resolve(MODEL, client=served.client)
    run_id = served.client.get_model_version(name, str(version)).run_id
    data = get(served, f"/api/v1/visualize/training-progress/{run_id}", params={"format": "json"},
               headers=HEADERS)  # fmt: skip
    assert data.status_code == 200, data.text
    body = data.json()
    assert body["run_id"] == run_id and "holdout/model/log_loss" in body["metrics"]
    chart = get(served, f"/api/v1/visualize/training-progress/{run_id}", headers=HEADERS)
    assert chart.status_code == 200 and chart.content.startswith(PNG)
    missing = get(served, "/api/v1/visualize/training-progress/0123456789abcdef", headers=HEADERS)
    assert missing.status_code == 404


def test_race_outcome_refuses_a_match(served: Served, event_key: str) -> None:
    answer = post(served, "/api/v1/predict/race-outcome",
                  {"event_key": event_key, "market_key": "1x2"}, headers=HEADERS)  # fmt: skip
    assert answer.status_code == 422 and "market_key" in violations(answer)


def test_openapi_lists_every_area(served: Served) -> None:
    paths = get(served, "/openapi.json").json()["paths"]
    for path in ("/api/v1/health", "/api/v1/predict/ensemble-prediction", "/api/v1/predict/batch",
                 "/api/v1/predict/race-outcome", "/api/v1/features/extract", "/api/v1/preprocess",
                 "/api/v1/models", "/api/v1/models/{name}/promote", "/api/v1/models/train",
                 "/api/v1/models/training", "/api/v1/models/training/{job_id}",
                 "/api/v1/visualize/training-progress/{run_id}",
                 "/api/v1/visualize/feature-importance/{model}",
                 "/api/v1/visualize/strategy-ranking", "/api/v1/strategies/rank",
                 "/api/v1/backtest-results",
                 "/api/v1/predict/strategy-recommendation"):  # fmt: skip
        assert path in paths, path


@pytest.fixture(scope="module")
def race_key(served: Served) -> str:
    """A stored race, with a LightGBM win model trained on its sport and promoted."""
    from betting.simulate import simulate
    from betting.store import create_engine_for, session_scope, write_batch
    from cluster.training import DataConfig, train_and_log
    from ensembles.fit import PREDICTOR_PATH, fit_ensemble

    races = simulate("racing", 2, seed=3, events_per_season=60)
    engine = create_engine_for(served.database_url)
    with session_scope(engine) as session:
        write_batch(session, races)
    engine.dispose()
    data = DataConfig(sport="racing", market="win", holdout_seasons=1)
    params = {"kind": "lightgbm", "member_params": {"lightgbm": {"n_estimators": 20}}}
    result = train_and_log("lightgbm", fit_ensemble, params, data, predictor_path=PREDICTOR_PATH)
    tracking.promote(result.model_name)
    return str(races.events["event_key"].iloc[-1])


def test_race_outcome_ranks_the_runners(served: Served, race_key: str) -> None:
    body = {"event_key": race_key, "market_key": "win"}
    deadline = time.monotonic() + 90
    while True:  # the racing model loads on first use (503 until then)
        answer = post(served, "/api/v1/predict/race-outcome", body, headers=HEADERS)
        if answer.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    ranking = result["ranking"]
    assert [r["position"] for r in ranking] == list(range(1, len(ranking) + 1))
    chances = [r["probability"] for r in ranking]
    assert chances == sorted(chances, reverse=True) and sum(chances) == pytest.approx(1.0)
    assert len(ranking) == len(result["prediction"]["selections"]) >= 2
    assert result["prediction"]["model"]["name"] == "betml-lightgbm-racing-win"
