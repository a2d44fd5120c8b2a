"""EvaluateStrategy, GenerateStrategy and /api/v1/strategies against the running application.

Backtest runs are stored through the store directly (the example export and variants of it);
generation backtests the stored league's settled events with the champion LightGBM.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from betting.ingest.backtest_export import (
    EXAMPLE_PATH,
    MLExport,
    import_backtest_export,
    load_backtest_export,
)
from betting.store import create_engine_for, session_scope
from betting.strategy_scoring import MIN_RUNS_FOR_MODEL, SCORING_VERSION
from serve.proto.betml.v1 import ml_service_pb2 as pb
from tests.e2e.conftest import API_KEY, METADATA, MODEL, Served
from tests.e2e.test_serve import call_error, rich

HEADERS = {"x-api-key": API_KEY}


def _variant(export: MLExport, strategy_id: str, *, walk_forward: bool, roi: float) -> MLExport:
    strategy = export.strategy.model_copy(update={"id": strategy_id})
    historical = export.metrics.historical.model_copy(update={"roi": roi})
    metrics = export.metrics.model_copy(
        update={
            "historical": historical,
            "walk_forward": export.metrics.walk_forward.model_copy(  # type: ignore[union-attr]
                update={"roi": roi / 2}
            )
            if walk_forward
            else None,
        }
    )
    return export.model_copy(update={"strategy": strategy, "metrics": metrics})


def _store(served: Served, *exports: MLExport) -> None:
    engine = create_engine_for(served.database_url)
    try:
        with session_scope(engine) as session:
            for export in exports:
                import_backtest_export(session, export)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def example(served: Served) -> MLExport:
    export = load_backtest_export(EXAMPLE_PATH)
    _store(served, export, _variant(export, "no-walk-forward", walk_forward=False, roi=0.2))
    return export


def _key(export: MLExport, strategy_id: str | None = None) -> pb.BacktestRunKey:
    key = pb.BacktestRunKey(
        strategy_id=strategy_id or export.strategy.id, strategy_version=export.strategy.version
    )
    key.period_start.FromDatetime(export.summary.period_start)
    key.period_end.FromDatetime(export.summary.period_end)
    return key


def _raw(export: MLExport) -> pb.StrategyBacktest:
    document = export.model_dump(mode="json", exclude_none=True)
    for bet in document["bets"]:
        bet["outcome"] = f"BET_OUTCOME_{bet['outcome'].upper()}"
    raw = {k: document[k] for k in ("strategy", "summary", "metrics", "bets")}
    return json_format.ParseDict(raw, pb.StrategyBacktest())


def _fields(error: grpc.RpcError) -> set[str]:
    return {
        v.field
        for d in rich(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    }


# --- EvaluateStrategy -------------------------------------------------------------------------


def test_evaluate_a_stored_and_a_raw_backtest(served: Served, example: MLExport) -> None:
    stored = served.stub.EvaluateStrategy(
        pb.EvaluateStrategyRequest(stored_run=_key(example)), metadata=METADATA, timeout=30
    )
    assert 0.0 <= stored.score <= 1.0 and stored.scoring_version == SCORING_VERSION
    assert stored.drawdown.samples == 2000 and stored.drawdown.historical == 0.0048
    assert stored.drawdown.p50 <= stored.drawdown.p95 <= stored.drawdown.p99
    assert stored.HasField("overfit_score") and stored.overfit_score == 0.0
    assert stored.risk_adjusted_return == pytest.approx(0.339 / stored.drawdown.p95)
    assert "only 20 bets: fewer than 200" in stored.warnings
    raw = served.stub.EvaluateStrategy(
        pb.EvaluateStrategyRequest(raw_backtest=_raw(example)), metadata=METADATA, timeout=30
    )
    assert raw == stored  # the same backtest, given in full, gets the same score


def test_evaluate_refusals(served: Served, example: MLExport) -> None:
    error = call_error(served.stub.EvaluateStrategy, pb.EvaluateStrategyRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(error) == {"backtest"}

    raw = _raw(example)
    raw.bets[0].odds = 0.5
    raw.metrics.ClearField("historical")
    raw.summary.initial_capital = 0.0
    error = call_error(served.stub.EvaluateStrategy, pb.EvaluateStrategyRequest(raw_backtest=raw))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == {
        "raw_backtest.bets[0].odds",
        "raw_backtest.metrics.historical",
        "raw_backtest.summary.initial_capital",
    }

    unknown = pb.EvaluateStrategyRequest(stored_run=_key(example, "no-such-strategy"))
    error = call_error(served.stub.EvaluateStrategy, unknown)
    assert error.code() == grpc.StatusCode.NOT_FOUND and "no-such-strategy" in error.details()

    partial = pb.EvaluateStrategyRequest(stored_run=pb.BacktestRunKey(strategy_id="x"))
    error = call_error(served.stub.EvaluateStrategy, partial)
    assert _fields(error) == {
        "stored_run.strategy_version", "stored_run.period_start", "stored_run.period_end"
    }  # fmt: skip

    error = call_error(
        served.stub.EvaluateStrategy, pb.EvaluateStrategyRequest(stored_run=_key(example)), ()
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_backtest_model_takes_over_once_enough_runs_are_stored(
    served: Served, example: MLExport
) -> None:
    request = pb.EvaluateStrategyRequest(stored_run=_key(example, "no-walk-forward"))
    before = served.stub.EvaluateStrategy(request, metadata=METADATA, timeout=30)
    assert not before.HasField("overfit_score")
    assert any("estimated by shrinking historical ROI 0.2000" in w for w in before.warnings)
    # runs whose walk-forward ROI is half their historical ROI: the model learns it
    _store(served, *(
        _variant(example, f"learned-{i}", walk_forward=True, roi=0.02 * i)
        for i in range(MIN_RUNS_FOR_MODEL + 2)
    ))  # fmt: skip
    after = served.stub.EvaluateStrategy(request, metadata=METADATA, timeout=30)
    [note] = [w for w in after.warnings if "predicted by the backtest model" in w]
    assert f"({MIN_RUNS_FOR_MODEL + 3} stored runs)" in note  # the variants and the example
    assert after.score != before.score


# --- GenerateStrategy -------------------------------------------------------------------------


def _constraints(**fields: Any) -> pb.StrategyConstraints:
    base: dict[str, Any] = {"sport": "football", "market_type": pb.MARKET_TYPE_MATCH_ODDS,
                            "max_drawdown": 0.6, "min_bets": 5}  # fmt: skip
    return pb.StrategyConstraints(**{**base, **fields})


def test_generate_strategy_proposes_backtested_parameters(served: Served) -> None:
    request = pb.GenerateStrategyRequest(
        constraints=_constraints(min_odds=1.5, max_odds=6.0, max_stake_fraction=0.02),
        max_proposals=2,
    )
    started = time.perf_counter()
    answer = served.stub.GenerateStrategy(request, metadata=METADATA, timeout=120)
    print(f"GenerateStrategy answered in {time.perf_counter() - started:.2f} s")
    assert 1 <= len(answer.proposals) <= 2 and not answer.unmet_constraints, answer
    scores = [p.score for p in answer.proposals]
    holdout_start = datetime(2022, 7, 1, tzinfo=UTC)  # the model trained on 2020-21 and 2021-22
    for proposal in answer.proposals:
        assert 0.0 <= proposal.score <= 1.0
        assert (proposal.model.name, proposal.model.version) == (MODEL, "1")
        params = json_format.MessageToDict(proposal.strategy.parameters)
        assert params["market"] == "1x2" and params["min_odds"] == 1.5
        assert params["max_odds"] <= 6.0 and params["max_stake_fraction"] <= 0.02
        assert params["min_edge"] >= 0.02 and 0 < params["kelly_multiplier"] <= 1
        full, early = proposal.backtests
        assert full.summary.total_bets >= 5
        assert full.summary.period_start.ToDatetime(tzinfo=UTC) >= holdout_start
        assert early.summary.period_end.ToDatetime() < full.summary.period_end.ToDatetime()
        assert full.metrics.HasField("walk_forward") and len(full.metrics.walk_forward.windows) == 2
        assert full.metrics.HasField("monte_carlo") and full.metrics.monte_carlo.simulations > 0
        assert full.risk_profile.risk_level != pb.RISK_LEVEL_UNSPECIFIED
    assert len({p.strategy.id for p in answer.proposals}) == len(answer.proposals)
    assert scores == sorted(scores, reverse=True)


def test_generate_strategy_says_which_constraints_cannot_be_met(served: Served) -> None:
    impossible = pb.GenerateStrategyRequest(
        constraints=_constraints(max_drawdown=0.0001, min_bets=100_000)
    )
    answer = served.stub.GenerateStrategy(impossible, metadata=METADATA, timeout=120)
    assert not answer.proposals
    [drawdown, bets] = answer.unmet_constraints
    assert drawdown.startswith("max_drawdown 0.0001: the best candidate's 95th-percentile")
    assert bets.startswith("min_bets 100000: the most bets a candidate placed is")
    curling = pb.GenerateStrategyRequest(constraints=_constraints(sport="curling"))
    answer = served.stub.GenerateStrategy(curling, metadata=METADATA, timeout=60)
    assert list(answer.unmet_constraints) == ["sport 'curling': no stored events of this sport"]


def test_generate_strategy_refusals(served: Served) -> None:
    error = call_error(served.stub.GenerateStrategy, pb.GenerateStrategyRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(error) == {"constraints"}
    bad = pb.GenerateStrategyRequest(
        constraints=_constraints(max_drawdown=0.0, min_odds=3.0, max_odds=2.0, sport=" "),
        max_proposals=11,
    )
    error = call_error(served.stub.GenerateStrategy, bad)
    assert _fields(error) == {
        "constraints.sport", "constraints.max_drawdown", "constraints.max_odds", "max_proposals"
    }  # fmt: skip
    # a market type without a served model
    moneyline = pb.GenerateStrategyRequest(
        constraints=_constraints(market_type=pb.MARKET_TYPE_TOTAL)
    )
    error = call_error(served.stub.GenerateStrategy, moneyline)
    assert error.code() == grpc.StatusCode.NOT_FOUND and "total" in error.details()


# --- HTTP -------------------------------------------------------------------------------------


def test_http_rank_and_performance(served: Served, example: MLExport) -> None:
    document = example.model_dump(mode="json")
    stored = {"strategy_id": "no-walk-forward", "strategy_version": example.strategy.version,
              "period_start": document["summary"]["period_start"],
              "period_end": document["summary"]["period_end"]}  # fmt: skip
    body = {"strategies": [{"stored_run": stored}, {"backtest": document}]}
    answer = httpx.post(f"{served.http}/api/v1/strategies/rank", json=body, headers=HEADERS,
                        timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text
    ranking = answer.json()["ranking"]
    assert [r["rank"] for r in ranking] == [1, 2] and {r["index"] for r in ranking} == {0, 1}
    assert ranking[0]["score"] >= ranking[1]["score"]
    by_index = {r["index"]: r for r in ranking}
    assert by_index[0]["run"]["strategy_id"] == "no-walk-forward"
    assert by_index[1]["strategy_id"] == example.strategy.id and by_index[1]["run"] is None
    grpc_score = served.stub.EvaluateStrategy(
        pb.EvaluateStrategyRequest(raw_backtest=_raw(example)), metadata=METADATA, timeout=30
    )
    assert by_index[1]["score"] == pytest.approx(grpc_score.score)

    broken = {"strategies": [{"backtest": {**document, "metrics": {"historical": {"roi": "x"}}}}]}
    answer = httpx.post(f"{served.http}/api/v1/strategies/rank", json=broken, headers=HEADERS,
                        timeout=30)  # fmt: skip
    assert answer.status_code == 422
    fields = {v["field"] for v in answer.json()["field_violations"]}
    assert "strategies[0].backtest.metrics.historical.roi" in fields
    missing = {"strategies": [{"stored_run": {**stored, "strategy_id": "nope"}}]}
    answer = httpx.post(f"{served.http}/api/v1/strategies/rank", json=missing, headers=HEADERS,
                        timeout=30)  # fmt: skip
    assert answer.status_code == 404 and "nope" in answer.json()["message"]
    empty = httpx.post(f"{served.http}/api/v1/strategies/rank", json={"strategies": []},
                       headers=HEADERS, timeout=30)  # fmt: skip
    assert empty.status_code == 422

    url = f"{served.http}/api/v1/strategies/performance"
    answer = httpx.get(url, params={"strategy_id": example.strategy.id}, headers=HEADERS,
                       timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    [run] = answer.json()["runs"]
    assert run["summary"]["total_bets"] == 20 and run["metrics"]["walk_forward"]["roi"] == 0.339
    assert run["score"] == pytest.approx(by_index[1]["score"])
    listed = httpx.get(url, params={"limit": 2}, headers=HEADERS, timeout=30).json()["runs"]
    assert len(listed) == 2
    answer = httpx.get(url, params={"limit": 0}, headers=HEADERS, timeout=30)
    assert answer.status_code == 422 and "limit" in answer.json()["field_violations"][0]["field"]
    assert httpx.get(url, timeout=30).status_code == 401


def test_strategy_ranking_chart(served: Served, example: MLExport) -> None:
    url = f"{served.http}/api/v1/visualize/strategy-ranking"
    data = httpx.get(url, params={"format": "json"}, headers=HEADERS, timeout=60)
    assert data.status_code == 200, data.text
    ranked = data.json()["strategies"]
    assert ranked and [r["score"] for r in ranked] == sorted((r["score"] for r in ranked),
                                                             reverse=True)  # fmt: skip
    assert example.strategy.id in {r["strategy_id"] for r in ranked}
    chart = httpx.get(url, headers=HEADERS, timeout=60)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
