"""End to end: the Serve application called with a real gRPC stub and a real HTTP client.

The app runs on the shared local Ray with a LightGBM model trained and registered for the test
(``conftest.served``). Every implemented RPC and HTTP route is called with good and bad input;
the status codes, messages and rich error details are the ones the README's gRPC contract
promises. The last tests load a model on demand (UNAVAILABLE until loaded) and move the champion
alias while a client keeps asking: no request fails and the answers switch to the new version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from betting.batch import EventBatch
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, build_features
from betting.frames import selection_frame
from betting.odds import recommend
from cluster import tracking
from serve.proto.betml.v1 import ml_service_pb2 as pb
from tests.e2e.conftest import API_KEY, METADATA, MODEL, SMALL, Served, train_version
from tests.serving import as_raw_event

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def event_key(stored: EventBatch) -> str:
    """A match of the last season, late enough to have history."""
    return str(stored.events["event_key"].iloc[-20])


def rich(error: grpc.RpcError) -> list[object]:
    """The unpacked google.rpc details of a failed call (the trailer must match the status)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer"
    details = []
    for packed in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.ResourceInfo,
            error_details_pb2.RetryInfo,
        ):
            if packed.Is(kind.DESCRIPTOR):
                detail = kind()
                packed.Unpack(detail)
                details.append(detail)
    return details


def call_error(
    call: object, request: object, metadata: tuple[tuple[str, str], ...] = METADATA
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=30)  # type: ignore[operator]
    return caught.value  # type: ignore[return-value]


# --- health ---------------------------------------------------------------------------------


def test_health_over_grpc_and_http(served: Served) -> None:
    health = served.stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)  # no key needed
    assert health.status == pb.SERVING_STATUS_SERVING
    assert health.feature_schema_version == FEATURE_SCHEMA_VERSION and health.service_version
    [model] = health.models
    assert (model.name, model.alias, model.version) == (MODEL, "champion", "1")
    assert model.state == pb.MODEL_STATE_LOADED and model.HasField("loaded_at")
    for path in ("/health", "/api/v1/health", "/health/ready"):
        answer = httpx.get(served.http + path, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["status"] == "SERVING_STATUS_SERVING"
        assert answer.json()["models"][0]["version"] == "1"
    assert httpx.get(served.http + "/health/live", timeout=10).json() == {"status": "alive"}
    # Reads need the API key outside development (the app runs with BETML_ENV=test).
    assert httpx.get(served.http + "/api/v1/models", timeout=10).status_code == 401


# --- GetPrediction --------------------------------------------------------------------------


def _check_recommendations(answer: pb.GetPredictionResponse, staking: pb.StakingOptions) -> None:
    probabilities = [s.probability for s in answer.selections]
    assert abs(sum(probabilities) - 1.0) < 1e-9 and all(0 < p < 1 for p in probabilities)
    for s in answer.selections:
        expected = recommend(
            s.probability,
            s.odds,
            kelly_multiplier=staking.kelly_multiplier,
            min_edge=staking.min_edge,
        )
        assert s.fair_odds == pytest.approx(1 / s.probability)
        assert s.expected_value == pytest.approx(expected.expected_value)
        assert s.kelly_fraction == pytest.approx(expected.kelly_fraction)
        assert s.minimum_acceptable_odds == pytest.approx(expected.minimum_acceptable_odds)
        assert pb.SignalTier.Name(s.tier) == f"SIGNAL_TIER_{expected.tier.value}"
        assert s.stake_fraction == pytest.approx(min(expected.stake, staking.max_stake_fraction))
        assert s.recommended_stake == pytest.approx(s.stake_fraction * staking.bankroll)
        assert s.is_bet == (s.stake_fraction > 0) and s.bookmaker and not s.HasField("agent_stake")


def test_get_prediction_of_a_stored_and_a_raw_event(
    served: Served, stored: EventBatch, event_key: str
) -> None:
    staking = pb.StakingOptions(
        bankroll=1000, kelly_multiplier=0.5, min_edge=0.0, max_stake_fraction=0.03
    )
    by_key = served.stub.GetPrediction(
        pb.GetPredictionRequest(event_key=event_key, market_key="1x2", staking=staking),
        metadata=METADATA,
        timeout=30,
    )
    assert (by_key.event_key, by_key.market_key) == (event_key, "1x2")
    assert [s.selection for s in by_key.selections] == ["home", "draw", "away"]
    assert (by_key.model.name, by_key.model.version, by_key.model.alias) == (MODEL, "1", "champion")
    assert by_key.model.feature_schema_version == FEATURE_SCHEMA_VERSION
    _check_recommendations(by_key, staking)

    raw = as_raw_event(stored, event_key)
    by_value = served.stub.GetPrediction(
        pb.GetPredictionRequest(raw_event=raw, market_key="1x2", staking=staking),
        metadata=METADATA,
        timeout=30,
    )
    np.testing.assert_allclose(
        [s.probability for s in by_value.selections],
        [s.probability for s in by_key.selections],
        rtol=1e-9,
    )
    only = served.stub.GetPrediction(  # bookmakers narrow the prices used
        pb.GetPredictionRequest(
            raw_event=raw,
            market_key="1x2",
            staking=pb.StakingOptions(bookmakers=[raw.markets[0].selections[0].odds[0].bookmaker]),
        ),
        metadata=METADATA,
        timeout=30,
    )
    assert {s.bookmaker for s in only.selections} == {
        raw.markets[0].selections[0].odds[0].bookmaker
    }
    assert not any(s.HasField("recommended_stake") for s in only.selections)  # no bankroll given


def test_get_prediction_refusals(served: Served, stored: EventBatch, event_key: str) -> None:
    call = served.stub.GetPrediction
    raw = as_raw_event(stored, event_key)
    raw.markets[0].selections[2].odds[0].price = 0.5
    raw.ClearField("starts_at")
    error = call_error(call, pb.GetPredictionRequest(raw_event=raw, market_key="1x2"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [bad] = rich(error)
    fields = {v.field: v.description for v in bad.field_violations}
    assert set(fields) == {
        "raw_event.starts_at",
        "raw_event.markets[0].selections[2].odds[0].price",
    }
    assert "0.5" in fields["raw_event.markets[0].selections[2].odds[0].price"]
    assert "raw_event.markets[0].selections[2].odds[0].price: " in error.details()

    error = call_error(
        call,
        pb.GetPredictionRequest(
            event_key=event_key, market_key="1x2", staking=pb.StakingOptions(bankroll=-5)
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rich(error)[0].field_violations[0].field == "staking.bankroll"
    error = call_error(call, pb.GetPredictionRequest(event_key=event_key))
    assert rich(error)[0].field_violations[0].field == "market_key"
    error = call_error(call, pb.GetPredictionRequest())
    assert rich(error)[0].field_violations[0].field == "event"

    for request, kind, name in [
        (
            pb.GetPredictionRequest(event_key="no-such-event", market_key="1x2"),
            "event",
            "no-such-event",
        ),
        (
            pb.GetPredictionRequest(event_key=event_key, market_key="win"),
            "market",
            f"{event_key}/win",
        ),
        (
            pb.GetPredictionRequest(
                event_key=event_key, market_key="1x2", model_name="betml-nothing-football-1x2"
            ),
            "model",
            "betml-nothing-football-1x2@champion",
        ),
        (
            pb.GetPredictionRequest(
                event_key=event_key, market_key="1x2", model_name=MODEL, model_alias="retired"
            ),
            "model",
            f"{MODEL}@retired",
        ),
    ]:
        error = call_error(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
        [info] = rich(error)
        assert (info.resource_type, info.resource_name) == (kind, name)

    error = call_error(call, pb.GetPredictionRequest(event_key=event_key, market_key="1x2"), ())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # BETML_ENV=test: reads need the key
    wrong = (("x-api-key", "not-" + API_KEY),)
    error = call_error(call, pb.GetPredictionRequest(event_key=event_key, market_key="1x2"), wrong)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = call_error(
        call,
        pb.GetPredictionRequest(
            event_key=event_key,
            market_key="1x2",
            staking=pb.StakingOptions(include_agent_stake=True),
        ),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # no strategy agent is registered here
    assert "betml-dqn-football-1x2" in error.details()


def test_feedback_needs_the_api_key(served: Served) -> None:
    error = call_error(served.stub.SubmitBacktestFeedback, pb.SubmitBacktestFeedbackRequest(), ())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # writes always need the key


# --- BatchPredict and GetFeatures -----------------------------------------------------------


def test_batch_predict_answers_in_order_with_inline_errors(
    served: Served, stored: EventBatch, event_key: str
) -> None:
    keys = stored.events["event_key"].iloc[-12:].tolist()
    good = [pb.GetPredictionRequest(event_key=k, market_key="1x2") for k in keys]
    raw = pb.GetPredictionRequest(raw_event=as_raw_event(stored, keys[0]), market_key="1x2")
    no_model = pb.GetPredictionRequest(raw_event=raw.raw_event, market_key="total:2.5")
    bad_price = pb.GetPredictionRequest(raw_event=as_raw_event(stored, keys[1]), market_key="1x2")
    bad_price.raw_event.markets[0].selections[0].odds[0].price = 1.0
    missing = pb.GetPredictionRequest(event_key="missing", market_key="1x2")
    agent = pb.GetPredictionRequest(
        event_key=keys[0], market_key="1x2", staking=pb.StakingOptions(include_agent_stake=True)
    )
    requests = [*good, raw, no_model, missing, bad_price, good[0], agent]
    answer = served.stub.BatchPredict(
        pb.BatchPredictRequest(requests=requests), metadata=METADATA, timeout=60
    )
    kinds = [r.WhichOneof("result") for r in answer.results]
    assert kinds == ["prediction"] * 13 + ["error"] * 3 + ["prediction", "error"]
    no_agent = answer.results[17].error  # this module registers no strategy agent
    assert no_agent.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "betml-dqn-football-1x2" in no_agent.message
    for request, result in zip([*good, raw], answer.results, strict=False):
        single = served.stub.GetPrediction(request, metadata=METADATA, timeout=30)
        assert result.prediction.event_key == single.event_key
        np.testing.assert_allclose(
            [s.probability for s in result.prediction.selections],
            [s.probability for s in single.selections],
            rtol=1e-9,
        )
    unserved, unknown, broken = (r.error for r in answer.results[13:16])
    assert unserved.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "betml-lightgbm-football-total-2-5" in unserved.message
    assert unknown.code == grpc.StatusCode.NOT_FOUND.value[0] and "missing" in unknown.message
    assert broken.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in broken.field_violations] == [
        "raw_event.markets[0].selections[0].odds[0].price"
    ]
    for requests in ([], [good[0]] * 1001):
        error = call_error(served.stub.BatchPredict, pb.BatchPredictRequest(requests=requests))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert rich(error)[0].field_violations[0].field == "requests"


def test_online_features_equal_offline_features(
    served: Served, stored: EventBatch, event_key: str
) -> None:
    offline = build_features(selection_frame(stored))
    expected = offline[offline["event_key"] == event_key].sort_values(["market_key", "position"])
    for request in (
        pb.GetFeaturesRequest(event_key=event_key),
        pb.GetFeaturesRequest(raw_event=as_raw_event(stored, event_key)),
    ):
        answer = served.stub.GetFeatures(request, metadata=METADATA, timeout=30)
        assert answer.event_key == event_key
        assert list(answer.feature_names) == FEATURE_COLUMNS
        assert [(s.market_key, s.selection) for s in answer.selections] == list(
            zip(expected["market_key"], expected["selection"], strict=True)
        )
        values = np.array([list(s.values) for s in answer.selections])
        # Bit-for-bit but for the order in which bookmakers' prices are summed.
        np.testing.assert_allclose(
            values, expected[FEATURE_COLUMNS].to_numpy(float), rtol=1e-12, atol=1e-15
        )
    one = served.stub.GetFeatures(
        pb.GetFeaturesRequest(event_key=event_key, market_keys=["total:2.5"]),
        metadata=METADATA,
        timeout=30,
    )
    assert {s.market_key for s in one.selections} == {"total:2.5"}
    error = call_error(
        served.stub.GetFeatures,
        pb.GetFeaturesRequest(event_key=event_key, market_keys=["spread:1"]),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = call_error(served.stub.GetFeatures, pb.GetFeaturesRequest(event_key="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and rich(error)[0].resource_type == "event"


# --- HTTP -----------------------------------------------------------------------------------


def test_http_predictions(served: Served, stored: EventBatch, event_key: str) -> None:
    url = served.http + "/api/v1/predict/ensemble-prediction"
    headers = {"x-api-key": API_KEY}
    body = {"event_key": event_key, "market_key": "1x2", "staking": {"bankroll": 100}}
    answer = httpx.post(url, json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    single = served.stub.GetPrediction(
        pb.GetPredictionRequest(event_key=event_key, market_key="1x2"),
        metadata=METADATA,
        timeout=30,
    )
    assert data["model"] == {
        "name": MODEL,
        "version": "1",
        "alias": "champion",
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
    }
    assert [s["probability"] for s in data["selections"]] == pytest.approx(
        [s.probability for s in single.selections]
    )
    assert data["selections"][0]["tier"].startswith("SIGNAL_TIER_")

    raw = {
        "raw_event": {
            "sport": "football",
            "competition": "SIM-FB1",
            "starts_at": "2030-01-01T15:00:00Z",
            "matchup": {"home": "SIM-FB1 Team 01", "away": "SIM-FB1 Team 02"},
            "markets": [
                {
                    "market_key": "1x2",
                    "type": "MARKET_TYPE_MATCH_ODDS",
                    "selections": [
                        {
                            "name": n,
                            "participant": p,
                            "odds": [
                                {"bookmaker": "b1", "kind": "ODDS_KIND_PRE_CLOSE", "price": price}
                            ],
                        }
                        for n, p, price in [
                            ("home", "SIM-FB1 Team 01", 2.1),
                            ("draw", "", 3.4),
                            ("away", "SIM-FB1 Team 02", 0.9),
                        ]
                    ],
                }
            ],
        }
    }
    answer = httpx.post(url, json=raw, headers=headers, timeout=30)
    assert answer.status_code == 422
    assert answer.json()["field_violations"][0]["field"] == (
        "raw_event.markets[0].selections[2].odds[0].price"
    )
    raw["raw_event"]["markets"][0]["selections"][2]["odds"][0]["price"] = 3.9
    answer = httpx.post(url, json=raw, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_key"].startswith("raw:football:SIM-FB1:2030-01-01T15:00Z")

    del raw["raw_event"]["sport"]
    answer = httpx.post(url, json=raw, headers=headers, timeout=30)
    assert answer.status_code == 422
    assert answer.json()["field_violations"][0]["field"] == "raw_event.sport"
    assert (
        httpx.post(
            url, json={"event_key": "x", "raw_event": raw["raw_event"]}, headers=headers, timeout=30
        ).status_code
        == 422
    )
    answer = httpx.post(url, json={"event_key": "nope", "market_key": "1x2"}, headers=headers)
    assert answer.status_code == 404 and answer.json()["resource_type"] == "event"
    assert httpx.post(url, json=body, timeout=30).status_code == 401

    answer = httpx.post(
        served.http + "/api/v1/predict/batch",
        headers=headers,
        timeout=30,
        json={"requests": [body, {"event_key": "nope", "market_key": "1x2"}]},
    )
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["results"]
    assert first["prediction"]["market_key"] == "1x2" and first["error"] is None
    assert second["error"]["code"] == 5 and second["prediction"] is None


# --- loading and promotion ------------------------------------------------------------------


def test_a_model_loading_on_demand_is_unavailable_until_loaded(
    served: Served, event_key: str
) -> None:
    request = pb.GetPredictionRequest(
        event_key=event_key, market_key="1x2", model_name=MODEL, model_alias="challenger"
    )
    error = call_error(served.stub.GetPrediction, request)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    [retry] = rich(error)
    assert retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9 > 0
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = served.stub.GetPrediction(request, metadata=METADATA, timeout=30)
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline
            time.sleep(0.2)
    assert (answer.model.alias, answer.model.version) == ("challenger", "1")


@pytest.fixture
def hammer(served: Served, event_key: str) -> Iterator[tuple[list[str], list[BaseException]]]:
    """A client thread sending GetPrediction back to back; yields (versions seen, failures)."""
    versions: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    request = pb.GetPredictionRequest(event_key=event_key, market_key="1x2")

    def run() -> None:
        while not stop.is_set():
            try:
                versions.append(
                    served.stub.GetPrediction(request, metadata=METADATA, timeout=30).model.version
                )
            except grpc.RpcError as e:
                failures.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield versions, failures
    stop.set()
    thread.join(timeout=60)


def test_promotion_switches_versions_without_failing_requests(
    served: Served, hammer: tuple[list[str], list[BaseException]]
) -> None:
    versions, failures = hammer
    second = train_version({**SMALL, "member_params": {"lightgbm": {"n_estimators": 8}}})
    assert second == 2
    time.sleep(1.0)  # requests keep flowing on version 1 meanwhile
    served.client.set_registered_model_alias(MODEL, tracking.ALIAS_CHAMPION, str(second))
    deadline = time.monotonic() + 60
    while not versions or versions[-1] != "2":
        assert time.monotonic() < deadline, f"still {versions[-1:]} after the promotion"
        time.sleep(0.1)
    time.sleep(1.0)
    assert not failures, failures[:3]
    switched = versions.index("2")
    assert set(versions[:switched]) == {"1"} and set(versions[switched:]) == {"2"}
    assert switched > 0
    health = served.stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
    champion = next(m for m in health.models if m.alias == "champion")
    assert champion.version == "2" and champion.state == pb.MODEL_STATE_LOADED


def _percentiles(stub: object, request: pb.GetPredictionRequest, n: int) -> tuple[float, float]:
    for _ in range(10):
        stub.GetPrediction(request, metadata=METADATA, timeout=30)  # type: ignore[attr-defined]
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        stub.GetPrediction(request, metadata=METADATA, timeout=30)  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - started)
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return float(p50), float(p99)


def test_get_prediction_latency(served: Served, stored: EventBatch, event_key: str) -> None:
    """p50/p99 of GetPrediction for one market through Serve's proxy, one client, sequential
    (printed; ``-s`` shows it)."""
    by_key = _percentiles(
        served.stub, pb.GetPredictionRequest(event_key=event_key, market_key="1x2"), 200
    )
    raw = pb.GetPredictionRequest(raw_event=as_raw_event(stored, event_key), market_key="1x2")
    by_value = _percentiles(served.stub, raw, 50)
    print(
        f"\nGetPrediction p50/p99 ms: stored event {by_key[0]:.1f}/{by_key[1]:.1f}, "
        f"raw event {by_value[0]:.1f}/{by_value[1]:.1f}"
    )
    assert by_key[0] < 1000 and by_value[0] < 2000


def _upcoming(stored: EventBatch, key: str, days: int) -> pb.Event:
    event = as_raw_event(stored, key)
    event.event_key = f"upcoming-{days}"
    start = stored.events["starts_at"].max() + pd.Timedelta(days=days)
    event.starts_at.FromDatetime(start.to_pydatetime())
    return event


def test_a_result_settled_over_http_is_seen_by_the_next_prediction(
    served: Served, stored: EventBatch
) -> None:
    """Near the end: it adds a match to the store (after every stored one) and settles it."""
    from betting.store import create_engine_for, session_scope, write_batch

    football = stored.events[stored.events["sport"] == "football"].sort_values("starts_at")
    last = str(football["event_key"].iloc[-1])
    pick = {n: getattr(stored, n)[getattr(stored, n)["event_key"] == last] for n in
            ("events", "markets", "selections", "odds")}  # fmt: skip
    fixture = EventBatch(
        pick["events"].assign(event_key="e2e-fixture", home_score=None, away_score=None,
                              starts_at=football["starts_at"].max() + pd.Timedelta(days=3)),
        *(pick[n].assign(event_key="e2e-fixture") for n in ("markets", "selections", "odds")),
    )  # fmt: skip
    engine = create_engine_for(served.database_url)
    with session_scope(engine) as session:
        write_batch(session, fixture)
    engine.dispose()

    def experience() -> list[float]:
        request = pb.GetFeaturesRequest(raw_event=_upcoming(stored, last, 10))
        answer = served.stub.GetFeatures(request, metadata=METADATA, timeout=30)
        column = list(answer.feature_names).index("experience")
        return [s.values[column] for s in answer.selections if s.market_key == "1x2"]

    before = experience()
    url = f"{served.http}/api/v1/events/e2e-fixture/result"
    headers = {"x-api-key": API_KEY}
    settled = httpx.post(url, json={"home_score": 3, "away_score": 0}, headers=headers, timeout=30)
    assert settled.status_code == 201, settled.text
    body = settled.json()
    assert body["markets_settled"] == 2 and body["feature_state"]["last_event_key"] == "e2e-fixture"
    after = experience()  # no TTL: the very next request sees the result
    assert after[0] == before[0] + 1 and after[2] == before[2] + 1
    health = served.stub.HealthCheck(pb.HealthCheckRequest(), timeout=30)
    [state] = [f for f in health.feature_states if f.sport == "football"]
    assert state.last_event_key == "e2e-fixture" and state.schema_version == FEATURE_SCHEMA_VERSION
    again = httpx.post(url, json={"home_score": 3, "away_score": 0}, headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["already_settled"]
    other = httpx.post(url, json={"home_score": 0, "away_score": 1}, headers=headers, timeout=30)
    assert other.status_code == 422 and "already settled" in other.text
    assert httpx.post(url, json={"home_score": 3}, headers=headers, timeout=30).status_code == 422
    missing = httpx.post(url.replace("e2e-fixture", "nope"), json={"home_score": 1,
                         "away_score": 1}, headers=headers, timeout=30)  # fmt: skip
    assert missing.status_code == 404
    assert httpx.post(url, json={"home_score": 1, "away_score": 1}, timeout=30).status_code == 401


def test_betml_serve_status_and_down(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Last: it deletes the application."""
    import ray
    from ray import serve
    from typer.testing import CliRunner

    from cluster.cli import app
    from cluster.settings import get_settings

    root = logging.getLogger()  # the CLI sets logging up for its process: put it back after
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    runner = CliRunner()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    refused = runner.invoke(app, ["serve", "status"])
    assert refused.exit_code != 0 and "RAY_ADDRESS" in str(refused.exception)
    monkeypatch.setenv("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
    get_settings.cache_clear()
    status = runner.invoke(app, ["serve", "status"], terminal_width=200)
    assert status.exit_code == 0, status.output
    assert "Ingress" in status.output and "ensemble" in status.output
    assert "RUNNING" in status.output
    down = runner.invoke(app, ["serve", "down", "--name", "betml"])
    assert down.exit_code == 0, down.output
    assert "betml" not in serve.status().applications
    get_settings.cache_clear()
