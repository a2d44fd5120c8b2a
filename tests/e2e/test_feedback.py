"""End to end: backtest feedback over gRPC and HTTP, and answered predictions logged to the store.

The app of ``conftest.served`` runs on the shared local Ray; exports go in through the real gRPC
stub (SubmitBacktestFeedback) and an HTTP client (``/api/v1/backtest-results``), and are read
back from the app's store. Predictions answered by GetPrediction, BatchPredict and the HTTP
route appear in the ``predictions`` table under the ``prediction_id`` the answer carries, and
are scored by :func:`betting.monitoring.live_scores` (the stored events are settled).
"""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pandas as pd
import pytest
from google.rpc import error_details_pb2
from sqlalchemy import func, select

from betting.ingest.backtest_export import EXAMPLE_PATH, load_backtest_export
from betting.monitoring import live_scores
from betting.schema import BacktestRun, Event, Prediction
from betting.store import create_engine_for, session_scope
from serve.feedback import export_to_proto
from serve.proto.betml.v1 import ml_service_pb2 as pb
from tests.e2e.conftest import API_KEY, METADATA, MODEL, Served
from tests.e2e.test_serve import call_error, rich

pytestmark = pytest.mark.slow

HEADERS = {"x-api-key": API_KEY}


def store_rows(served: Served, stmt: object) -> pd.DataFrame:
    engine = create_engine_for(served.database_url)
    try:
        with session_scope(engine) as session:
            return pd.read_sql(stmt, session.connection())
    finally:
        engine.dispose()


def example_document(version: str) -> dict[str, object]:
    document = json.loads(EXAMPLE_PATH.read_text())
    document["strategy"]["version"] = version
    return document


def test_submit_then_resubmit_is_skipped(served: Served) -> None:
    export = load_backtest_export(EXAMPLE_PATH)
    request = pb.SubmitBacktestFeedbackRequest(export=export_to_proto(export))
    first = served.stub.SubmitBacktestFeedback(request, metadata=METADATA, timeout=30)
    assert (first.runs_added, first.runs_skipped) == (1, 0)
    assert (first.bets_added, first.equity_points_added) == (20, 21)
    assert (first.run.strategy_id, first.run.strategy_version) == ("value-pinnacle-fair", "1.2.0")
    assert first.run.period_start.ToDatetime().date().isoformat() == "2023-08-09"
    again = served.stub.SubmitBacktestFeedback(request, metadata=METADATA, timeout=30)
    assert (again.runs_added, again.runs_skipped, again.bets_added) == (0, 1, 0)
    assert again.run == first.run
    runs = store_rows(served, select(BacktestRun).where(BacktestRun.strategy_version == "1.2.0"))
    assert len(runs) == 1 and runs["final_capital"].iloc[0] == pytest.approx(10044.49)


def test_bad_exports_name_each_field(served: Served) -> None:
    message = export_to_proto(load_backtest_export(EXAMPLE_PATH))
    message.strategy.version = "bad-1"
    message.bets[3].odds = 0.5
    message.bets[7].outcome = pb.BET_OUTCOME_UNSPECIFIED
    message.ClearField("summary")
    error = call_error(
        served.stub.SubmitBacktestFeedback, pb.SubmitBacktestFeedbackRequest(export=message)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [detail] = rich(error)
    assert isinstance(detail, error_details_pb2.BadRequest)
    fields = {v.field: v.description for v in detail.field_violations}
    assert set(fields) == {"export.bets[3].odds", "export.bets[7].outcome", "export.summary"}
    assert "0.5" in fields["export.bets[3].odds"] and "export.bets[3].odds" in error.details()
    empty = call_error(served.stub.SubmitBacktestFeedback, pb.SubmitBacktestFeedbackRequest())
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT and "export: is required" in (
        empty.details()
    )
    stored = store_rows(served, select(func.count()).select_from(BacktestRun).where(
        BacktestRun.strategy_version == "bad-1"))  # fmt: skip
    assert stored.iloc[0, 0] == 0  # nothing of a refused export is written


def test_feedback_needs_the_api_key(served: Served) -> None:
    request = pb.SubmitBacktestFeedbackRequest(
        export=export_to_proto(load_backtest_export(EXAMPLE_PATH))
    )
    for metadata in ((), (("x-api-key", "wrong"),)):
        error = call_error(served.stub.SubmitBacktestFeedback, request, metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_backtest_results_over_http(served: Served) -> None:
    url = served.http + "/api/v1/backtest-results"
    document = example_document("http-1")
    assert httpx.post(url, json=document, timeout=30).status_code == 401
    added = httpx.post(url, json=document, headers=HEADERS, timeout=30)
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["runs_added"], body["bets_added"], body["equity_points_added"]) == (1, 20, 21)
    again = httpx.post(url, json=document, headers=HEADERS, timeout=30)
    assert again.status_code == 200 and again.json()["runs_skipped"] == 1
    assert again.json()["id"] == body["id"] and again.json()["runs_added"] == 0

    bad = example_document("http-bad")
    bad["bets"][3]["odds"] = 0.5  # type: ignore[index]
    del bad["summary"]
    refused = httpx.post(url, json=bad, headers=HEADERS, timeout=30)
    assert refused.status_code == 422
    fields = {v["field"] for v in refused.json()["field_violations"]}
    assert fields == {"bets[3].odds", "summary"}

    assert httpx.get(url, timeout=30).status_code == 401  # reads need it outside development
    listed = httpx.get(
        url, params={"strategy_id": "value-pinnacle-fair"}, headers=HEADERS, timeout=30
    )
    assert listed.status_code == 200
    runs = {r["strategy_version"]: r for r in listed.json()["runs"]}
    assert "http-1" in runs and "http-bad" not in runs
    assert runs["http-1"]["roi"] == pytest.approx(0.2033) and runs["http-1"]["total_bets"] == 20
    assert listed.json()["total"] == len(listed.json()["runs"])
    page = httpx.get(url, params={"limit": 1, "offset": 0}, headers=HEADERS, timeout=30).json()
    assert len(page["runs"]) == 1 and page["total"] >= 1
    assert (
        httpx.get(url, params={"strategy_id": "nobody"}, headers=HEADERS, timeout=30).json()["runs"]
        == []
    )
    later = httpx.get(
        url, params={"since": "2999-01-01T00:00:00Z"}, headers=HEADERS, timeout=30
    ).json()
    assert later["runs"] == []

    one = httpx.get(f"{url}/{body['id']}", headers=HEADERS, timeout=30)
    assert one.status_code == 200
    run = one.json()
    assert run["strategy_version"] == "http-1" and "bets" not in run
    assert run["metrics"]["monte_carlo"]["simulations"] == 10000
    assert run["risk_profile"]["risk_level"] == document["risk_profile"]["risk_level"]  # type: ignore[index]
    full = httpx.get(
        f"{url}/{body['id']}", params={"include": "bets,equity"}, headers=HEADERS, timeout=30
    ).json()
    assert len(full["bets"]) == 20 and len(full["equity_curve"]) == 21
    assert full["bets"][0]["event_ref"] == document["bets"][0]["event_ref"]  # type: ignore[index]
    missing = httpx.get(f"{url}/999999", headers=HEADERS, timeout=30)
    assert missing.status_code == 404 and "999999" in missing.json()["message"]
    wrong = httpx.get(
        f"{url}/{body['id']}", params={"include": "trades"}, headers=HEADERS, timeout=30
    )
    assert wrong.status_code == 422 and wrong.json()["field_violations"][0]["field"] == "include"


def logged(served: Served, ids: list[str], expected_rows: int) -> pd.DataFrame:
    """The logged rows of ``ids``, waiting for the background writer (flushes every ~1 s)."""
    deadline = time.monotonic() + 30
    while True:
        rows = store_rows(served, select(Prediction).where(Prediction.prediction_id.in_(ids)))
        if len(rows) >= expected_rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def test_answered_predictions_are_logged_and_scored(served: Served) -> None:
    keys = store_rows(served, select(Event.key).order_by(Event.starts_at.desc()).limit(3))["key"]
    answer = served.stub.GetPrediction(
        pb.GetPredictionRequest(event_key=keys[0], market_key="1x2"),
        metadata=METADATA, timeout=30,
    )  # fmt: skip
    assert answer.prediction_id
    batch = served.stub.BatchPredict(
        pb.BatchPredictRequest(requests=[
            pb.GetPredictionRequest(event_key=k, market_key="1x2") for k in keys[1:]]),
        metadata=METADATA, timeout=30,
    )  # fmt: skip
    batch_ids = [r.prediction.prediction_id for r in batch.results]
    over_http = httpx.post(
        served.http + "/api/v1/predict/ensemble-prediction",
        json={"event_key": keys[0], "market_key": "1x2"}, headers=HEADERS, timeout=30,
    ).json()  # fmt: skip
    ids = [answer.prediction_id, *batch_ids, over_http["prediction_id"]]
    assert all(ids) and len(set(ids)) == 4

    rows = logged(served, ids, 12)
    assert len(rows) == 12 and set(rows["prediction_id"]) == set(ids)
    mine = rows[rows["prediction_id"] == answer.prediction_id].set_index("selection")
    for s in answer.selections:
        assert mine.loc[s.selection, "probability"] == pytest.approx(s.probability)
        assert mine.loc[s.selection, "odds"] == pytest.approx(s.odds)
        assert mine.loc[s.selection, "bookmaker"] == s.bookmaker
    assert set(mine["model_name"]) == {MODEL} and set(mine["model_version"]) == {
        answer.model.version
    }
    assert set(mine["event_ref"]) == {keys[0]} and mine["selection_id"].notna().all()

    engine = create_engine_for(served.database_url)
    with session_scope(engine) as session:
        scores = live_scores(session)
    engine.dispose()
    row = scores[scores["model_name"] == MODEL].iloc[0]
    assert row["markets"] == 3  # keys[0] twice counts once
    assert 0.0 < row["log_loss"] < 5.0 and 0.0 <= row["ece"] <= 1.0
