"""Serving without Ray: request checking, errors and their details, prices, auth and config."""

from __future__ import annotations

import asyncio
import pickle
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from google.rpc import error_details_pb2, status_pb2
from pydantic import SecretStr, ValidationError

from betting.features import FEATURE_SCHEMA_VERSION
from cluster.settings import Settings
from cluster.tracking import market_slug
from serve.access import check_api_key
from serve.config import ServeArgs
from serve.errors import (
    BadRequest,
    FieldViolation,
    Internal,
    ModelUnavailable,
    ResourceNotFound,
    Unauthenticated,
    as_serve_error,
    status_details,
)
from serve.http import PredictionRequest, error_response, validation_error
from serve.models import ModelInfo
from serve.predictions import best_prices, prediction_response
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import features_request, prediction_request

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _event(**changes: object) -> pb.Event:
    event = pb.Event(
        sport="football", competition="E0", matchup=pb.Matchup(home="Arsenal", away="Chelsea")
    )
    event.starts_at.FromDatetime(datetime(2025, 3, 2, 15, tzinfo=UTC))
    market = event.markets.add(market_key="1x2", type=pb.MARKET_TYPE_MATCH_ODDS)
    for name, side, price in [
        ("home", "Arsenal", 2.1),
        ("draw", "", 3.4),
        ("away", "Chelsea", 3.6),
    ]:
        selection = market.selections.add(name=name, participant=side)
        selection.odds.add(bookmaker="pinnacle", kind=pb.ODDS_KIND_CLOSE, price=price)
        selection.odds.add(bookmaker="market_max", kind=pb.ODDS_KIND_CLOSE, price=price + 1)
    for key, value in changes.items():
        setattr(event, key, value)
    return event


def test_a_raw_event_becomes_a_valid_batch_of_one_unsettled_event() -> None:
    item = prediction_request(pb.GetPredictionRequest(raw_event=_event()), NOW)
    assert item.market_key == "1x2"  # the only market
    assert item.event_key == "raw:football:E0:2025-03-02T15:00Z:Arsenal:Chelsea"
    batch = item.raw.batch  # type: ignore[union-attr]
    batch.validate()
    assert batch.events.iloc[0]["season"] == "2024-25" and batch.results.empty
    assert (batch.odds["captured_at"] == pd.Timestamp(NOW)).all()  # defaults to receipt
    participants = batch.selections["participant"]
    assert [p if isinstance(p, str) else None for p in participants] == ["Arsenal", None, "Chelsea"]
    assert item.staking.kelly_multiplier == 0.25 and item.staking.min_edge == 0.02


def test_every_broken_rule_is_reported_with_its_path() -> None:
    event = _event(sport="Football")
    event.ClearField("starts_at")
    market = event.markets[0]
    market.selections[1].odds[0].price = 1.0
    market.selections[2].participant = "Spurs"
    market.line = 2.5
    extra = event.markets.add(market_key="1x2", type=pb.MARKET_TYPE_TOTAL)
    extra.selections.add(name="over")
    request = pb.GetPredictionRequest(
        raw_event=event, staking=pb.StakingOptions(bankroll=-1, kelly_multiplier=2),
        model_name="Bad Name",
    )  # fmt: skip
    with pytest.raises(BadRequest) as caught:
        prediction_request(request, NOW)
    fields = [v.field for v in caught.value.violations]
    assert fields == [
        "staking.bankroll", "staking.kelly_multiplier", "model_name", "raw_event.sport",
        "raw_event.starts_at", "raw_event.markets[0].line",
        "raw_event.markets[0].selections[1].odds[0].price",
        "raw_event.markets[0].selections[2].participant", "raw_event.markets[1].line",
        "raw_event.markets[1].selections", "raw_event.markets[1].selections[0].odds",
        "raw_event.markets[1].market_key",
    ]  # fmt: skip
    assert "1.0" in str(caught.value) and "'Spurs'" in str(caught.value)


def test_market_key_and_event_rules() -> None:
    two = _event()
    two.markets.add().CopyFrom(two.markets[0])
    two.markets[1].market_key = "1x2-b"
    with pytest.raises(BadRequest, match="market_key: is required: the raw event has 2"):
        prediction_request(pb.GetPredictionRequest(raw_event=two), NOW)
    with pytest.raises(ResourceNotFound) as caught:
        prediction_request(pb.GetPredictionRequest(raw_event=two, market_key="total:2.5"), NOW)
    assert caught.value.resource_type == "market"
    with pytest.raises(BadRequest, match="market_key: is required with event_key"):
        prediction_request(pb.GetPredictionRequest(event_key="k"), NOW)
    with pytest.raises(BadRequest, match="event: is required"):
        prediction_request(pb.GetPredictionRequest(), NOW)
    with pytest.raises(BadRequest, match="model_alias: 'x' needs model_name"):
        prediction_request(pb.GetPredictionRequest(event_key="k", market_key="1x2",
                                                   model_alias="x"), NOW)  # fmt: skip
    with pytest.raises(ResourceNotFound):
        features_request(pb.GetFeaturesRequest(raw_event=_event(), market_keys=["win"]), NOW)
    race = _event()
    race.race.runners.extend(["A", "A"])
    with pytest.raises(BadRequest, match=r"race.runners: needs at least 2.*|must be unique"):
        prediction_request(pb.GetPredictionRequest(raw_event=race), NOW)


def test_errors_carry_the_rich_details_the_readme_promises() -> None:
    bad = BadRequest([FieldViolation("staking.bankroll", "must be >= 0, got -1.0")])
    status = status_pb2.Status.FromString(status_details(bad))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "staking.bankroll: must be >= 0, got -1.0"
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "staking.bankroll"
    loading = ModelUnavailable("loading", retry_after_s=2.5)
    retry = error_details_pb2.RetryInfo()
    status_pb2.Status.FromString(status_details(loading)).details[0].Unpack(retry)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (2, 500_000_000)
    for error in (bad, loading, ResourceNotFound("event", "k", "no event 'k'")):
        copy = pickle.loads(pickle.dumps(error))  # they travel between Serve replicas
        assert type(copy) is type(error) and str(copy) == str(error)
    assert isinstance(as_serve_error(RuntimeError("boom")), Internal)
    assert "boom" not in str(as_serve_error(RuntimeError("boom")))


def test_http_errors_mirror_the_grpc_codes() -> None:
    answer = error_response(ModelUnavailable("model m@champion is loading", retry_after_s=5))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    answer = error_response(BadRequest.of("raw_event.sport", "is required"))
    assert answer.status_code == 422 and b'"field":"raw_event.sport"' in answer.body
    assert error_response(ResourceNotFound("event", "k", "x")).status_code == 404


def test_best_prices_use_latest_real_bookmaker_prices() -> None:
    at = pd.Timestamp("2025-03-01", tz="UTC")
    quotes = pd.DataFrame(
        [("1x2", "home", "a", at, 2.0), ("1x2", "home", "a", at + pd.Timedelta("1h"), 1.9),
         ("1x2", "home", "b", at, 1.95), ("1x2", "home", "market_max", at, 2.5),
         ("1x2", "away", "b", at, 3.0), ("total:2.5", "home", "a", at, 9.0)],
        columns=["market_key", "selection", "bookmaker", "captured_at", "price"],
    )  # fmt: skip
    assert best_prices(quotes, "1x2", ["home", "away"], ()) == {
        "home": (1.95, "b"), "away": (3.0, "b")
    }  # fmt: skip
    assert best_prices(quotes, "1x2", ["home"], ("a",)) == {"home": (1.9, "a")}
    assert best_prices(quotes, "1x2", ["home"], ("market_max",)) == {"home": (2.5, "market_max")}


def test_prediction_response_applies_the_odds_rules_and_the_cap() -> None:
    staking = pb.StakingOptions(bankroll=200, max_stake_fraction=0.01, min_edge=0.0)
    item = prediction_request(pb.GetPredictionRequest(raw_event=_event(), staking=staking), NOW)
    rows = pd.DataFrame({"selection": ["home", "draw", "away"]})
    quotes = item.raw.batch.odds  # type: ignore[union-attr]
    model = ModelInfo("betml-lightgbm-football-1x2", 3, "champion", FEATURE_SCHEMA_VERSION)
    answer = prediction_response(item, rows, quotes, [0.6, 0.25, 0.15], model, NOW)
    home, draw, _ = answer.selections
    assert (home.odds, home.bookmaker) == (2.1, "pinnacle")  # market_max is an aggregate
    assert home.expected_value == pytest.approx(0.26) and home.tier == pb.SIGNAL_TIER_A
    assert home.kelly_fraction == pytest.approx(0.26 / 1.1)
    assert home.stake_fraction == 0.01 and home.recommended_stake == pytest.approx(2.0)
    assert draw.stake_fraction == 0.0 and not draw.is_bet and draw.tier == pb.SIGNAL_TIER_D
    assert answer.model.version == "3" and answer.predicted_at.ToDatetime(tzinfo=UTC) == NOW
    only_b = prediction_request(pb.GetPredictionRequest(
        raw_event=_event(), staking=pb.StakingOptions(bookmakers=["bet365"])), NOW)  # fmt: skip
    with pytest.raises(BadRequest, match=r"staking\.bookmakers: no price from"):
        prediction_response(only_b, rows, quotes, [0.6, 0.25, 0.15], model, NOW)


def test_api_key_policy() -> None:
    dev, prod = Settings(env="development"), Settings(env="production", api_key=SecretStr("k3y!"))
    check_api_key(None, access="read", settings=dev)  # reads are open in development
    check_api_key(None, access="open", settings=prod)
    check_api_key("k3y!", access="write", settings=prod)
    for given, access, settings in [(None, "read", prod), ("nope", "read", prod),
                                    (None, "write", dev), ("x", "write", dev)]:  # fmt: skip
        with pytest.raises(Unauthenticated):
            check_api_key(given, access=access, settings=settings)  # type: ignore[arg-type]


def test_serve_args_are_checked_and_route_models_by_family() -> None:
    args = ServeArgs.model_validate({"models": {
        "ensemble": {"families": ["lightgbm", "random-forest"]},
        "classifier": {"families": ["keras"]},
    }})  # fmt: skip
    assert args.deployment_for_model("betml-keras-football-1x2") == "classifier"
    assert args.deployment_for_model("betml-random-forest-football-1x2") == "ensemble"
    assert args.deployment_for_model("betml-other-football-1x2") == "ensemble"  # the default
    for bad in [{"models": {"agent": {"families": ["dqn"]}}},
                {"default_deployment": "classifier"},
                {"models": {"ensemble": {"families": ["keras"]},
                            "classifier": {"families": ["keras"]}}}]:  # fmt: skip
        with pytest.raises(ValidationError):
            ServeArgs.model_validate(bad)


def test_market_slug() -> None:
    slugs = {"1x2": "1x2", "total:2.5": "total-2-5", "spread:-1.5": "spread-1-5", "Win": "win"}
    for market, slug in slugs.items():
        assert market_slug(market) == slug


def test_malformed_http_bodies_are_422_with_fields() -> None:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.post("/predict")
    async def predict(body: PredictionRequest) -> dict[str, str]:
        return {"ok": "yes"}

    event = {
        "sport": "football",
        "competition": "E0",
        "starts_at": "2025-03-02T15:00:00",
        "markets": [{"market_key": "1x2", "type": "MARKET_TYPE_NOPE", "selections": []}],
    }

    async def post() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            broken = await client.post(
                "/predict", content=b"{not json", headers={"content-type": "application/json"}
            )
            return broken, await client.post("/predict", json={"raw_event": event})

    broken, answer = asyncio.run(post())
    assert broken.status_code == 422 and broken.json()["field_violations"][0]["field"] == "body"
    assert answer.status_code == 422
    fields = {v["field"] for v in answer.json()["field_violations"]}
    assert fields == {"raw_event.starts_at", "raw_event.markets[0].type"}  # no zone; bad enum


def test_serving_imports_no_training_code_and_does_nothing_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ray\n"
        "import serve.app, serve.deploy, ensembles.predictor, "
        "classifiers.predictor, rl.policy\n"
        "training = ('cluster.training', 'cluster.sweeps', 'cluster.configs', 'ensembles.fit', "
        "'classifiers.fit', 'rl.train', 'ray.rllib')\n"
        "print(sorted(m for m in training if m in sys.modules), ray.is_initialized())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[] False"


def test_the_shipped_serve_config_is_valid_and_gives_working_example_calls() -> None:
    from serve.app import GRPC_SERVICER_FUNCTION
    from serve.deploy import APP_IMPORT_PATH, example_calls, load_serve_config

    config = load_serve_config(ROOT / "configs" / "serve" / "local.yaml")
    [app] = config.applications
    assert app.import_path == APP_IMPORT_PATH
    assert config.grpc_options.grpc_servicer_functions == [GRPC_SERVICER_FUNCTION]
    assert (config.http_options.port, config.grpc_options.port) == (8000, 9000)
    args = ServeArgs.model_validate(app.args)
    assert set(args.models) == {"ensemble", "classifier"}
    assert args.agent is not None and not args.agent.preload  # `make demo` registers no agent
    assert {d.name for d in app.deployments} == {"Ingress", "ensemble", "classifier", "agent"}
    assert all(d.autoscaling_config for d in app.deployments)
    calls = example_calls(config, "fd:E0:2024-08-16:Man United:Fulham", "1x2")
    assert calls[0] == "grpcurl -plaintext 127.0.0.1:9000 betml.v1.MLService/HealthCheck"
    assert '"event_key": "fd:E0:2024-08-16:Man United:Fulham"' in calls[1]
    assert calls[3].startswith("curl -s -X POST http://127.0.0.1:8000/api/v1/predict/")
