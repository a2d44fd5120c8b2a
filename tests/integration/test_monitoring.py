"""Prediction logging and live scores on SQLite and PostgreSQL.

The scores are checked against values computed by hand: two settled 1X2 markets predicted by
version 1 (log loss ln 2, Brier 0.3775, ECE 1/3, one value bet closing 6.5 after being taken at
6.0), one by version 2 (no closing price of its bookmaker: no CLV).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from betting.batch import EventBatch
from betting.monitoring import PREDICTION_COLUMNS, live_scores, score_live
from betting.schema import Event, Prediction
from betting.store import create_engine_for, migrate, session_scope, write_batch
from serve.prediction_log import PredictionLog
from serve.proto.betml.v1 import ml_service_pb2 as pb

KICKOFF = datetime(2024, 8, 17, 14, 0, tzinfo=UTC)
NAMES = ("home", "draw", "away")
#: Per event: winner (None: not played), bet365's closing prices.
EVENTS = {
    "mon:1": ("home", (2.0, 3.6, 6.5)),
    "mon:2": ("away", (4.2, 3.5, 2.0)),
    "mon:3": (None, (2.5, 3.2, 3.0)),
}
LN2 = math.log(2.0)


def league(prefix: str = "mon") -> EventBatch:
    keys = [k.replace("mon", prefix) for k in EVENTS]
    events = pd.DataFrame({
        "event_key": keys, "source": "test", "sport": "football", "competition": "E0",
        "season": "2024-25", "starts_at": [KICKOFF + timedelta(days=i) for i in range(3)],
        "home": ["A", "B", "C"], "away": ["D", "E", "F"], "home_score": [2, 0, None],
        "away_score": [1, 1, None],
    })  # fmt: skip
    markets = pd.DataFrame({"event_key": keys, "market_key": "1x2", "type": "1x2", "line": None})
    selections = pd.DataFrame(
        [(k, "1x2", n, pos, None, None) for k in keys for pos, n in enumerate(NAMES)],
        columns=["event_key", "market_key", "name", "position", "participant", "true_probability"],
    )
    odds = pd.DataFrame(
        [
            (key, "1x2", name, "bet365", kind, KICKOFF - timedelta(hours=h), price + bump)
            for key, (_, closing) in zip(keys, EVENTS.values(), strict=True)
            for name, price in zip(NAMES, closing, strict=True)
            # an earlier close of another price: the latest close counts
            for kind, h, bump in (("open", 48, 0.3), ("close", 5, 0.7), ("close", 1, 0.0))
        ],
        columns=["event_key", "market_key", "selection", "bookmaker", "kind", "captured_at",
                 "price"],
    )  # fmt: skip
    results = pd.DataFrame([
        {"event_key": k, "market_key": "1x2", "winner": w}
        for k, (w, _) in zip(keys, EVENTS.values(), strict=True) if w
    ])  # fmt: skip
    return EventBatch(events, markets, selections, odds, results)


def rows(
    pid: str, at: datetime, version: str, event: str, p: tuple[float, ...],
    odds: tuple[float, ...], bookmaker: str = "bet365", model: str = "betml-m",
) -> list[dict[str, object]]:  # fmt: skip
    return [
        {"prediction_id": pid, "created_at": at, "model_name": model, "model_version": version,
         "event_ref": event, "market": "1x2", "selection": name, "probability": pi, "odds": o,
         "bookmaker": bookmaker}
        for name, pi, o in zip(NAMES, p, odds, strict=True)
    ]  # fmt: skip


T0 = datetime(2024, 8, 10, tzinfo=UTC)
PREDICTIONS = [
    # replaced by the later prediction of the same market and version
    *rows("old", T0, "1", "mon:1", (0.1, 0.1, 0.8), (2.2, 3.5, 6.0)),
    *rows("p1", T0 + timedelta(hours=1), "1", "mon:1", (0.5, 0.3, 0.2), (2.2, 3.5, 6.0)),
    *rows("p2", T0 + timedelta(days=1), "1", "mon:2", (0.25, 0.25, 0.5), (4.0, 3.8, 1.9)),
    *rows("p3", T0 + timedelta(days=1), "1", "mon:3", (0.4, 0.3, 0.3), (2.5, 3.2, 3.0)),  # open
    *rows("p4", T0, "1", "elsewhere:9", (0.4, 0.3, 0.3), (2.5, 3.2, 3.0)),  # not stored
    *rows("v2", T0, "2", "mon:1", (0.6, 0.2, 0.2), (2.2, 3.5, 6.0), bookmaker="pinnacle"),
]


def check_version_1(row: pd.Series, *, markets: int = 2) -> None:
    if markets == 2:
        assert row["log_loss"] == pytest.approx(LN2)
        assert row["brier"] == pytest.approx((0.38 + 0.375) / 2)
        # bins: 0.5 (p 1.0, wins 2), 0.3 (0.3, 0), 0.2 + 0.25 + 0.25 (0.7, 0): (1 + .3 + .7) / 6
        assert row["ece"] == pytest.approx(2.0 / 6)
    # p1's best value bet: away at 6.0 (edge 0.2), closing 6.5; p2 has no value bet
    assert row["clv"] == pytest.approx(6.0 / 6.5 - 1.0)
    assert row["clv_bets"] == 1 and row["markets"] == markets


def test_score_live_by_hand() -> None:
    frame = pd.DataFrame(PREDICTIONS)
    settled = {"mon:1": "home", "mon:2": "away"}
    frame["won"] = [
        float(settled[e] == s) if e in settled else math.nan
        for e, s in zip(frame["event_ref"], frame["selection"], strict=True)
    ]
    closing = {("mon:1", "bet365"): (2.0, 3.6, 6.5), ("mon:2", "bet365"): (4.2, 3.5, 2.0)}
    frame["closing_odds"] = [
        closing[(e, b)][NAMES.index(s)] if (e, b) in closing else math.nan
        for e, b, s in zip(frame["event_ref"], frame["bookmaker"], frame["selection"], strict=True)
    ]
    scores = score_live(frame[PREDICTION_COLUMNS]).set_index("model_version")
    assert list(scores.index) == ["1", "2"]
    check_version_1(scores.loc["1"])
    v2 = scores.loc["2"]
    assert v2["markets"] == 1 and v2["log_loss"] == pytest.approx(-math.log(0.6))
    assert math.isnan(v2["clv"]) and v2["clv_bets"] == 0
    assert score_live(frame[PREDICTION_COLUMNS].iloc[:0]).empty


def test_live_scores_from_the_store(session: Session) -> None:
    write_batch(session, league())
    session.execute(insert(Prediction), PREDICTIONS)
    scores = live_scores(session).set_index("model_version")
    assert list(scores.index) == ["1", "2"] and set(scores["model_name"]) == {"betml-m"}
    check_version_1(scores.loc["1"])
    assert scores.loc["1", "first_at"] == T0 + timedelta(hours=1)
    assert scores.loc["2", "log_loss"] == pytest.approx(-math.log(0.6))
    assert math.isnan(scores.loc["2", "clv"])  # no pinnacle closing price stored
    recent = live_scores(session, since=T0 + timedelta(hours=2)).set_index("model_version")
    assert list(recent.index) == ["1"] and recent.loc["1", "markets"] == 1
    assert recent.loc["1", "log_loss"] == pytest.approx(LN2)
    assert live_scores(session, since=T0 + timedelta(days=30)).empty


# --- the prediction log ---------------------------------------------------------------------


def answer(event_key: str, version: str = "3") -> pb.GetPredictionResponse:
    response = pb.GetPredictionResponse(
        event_key=event_key, market_key="1x2",
        model=pb.ModelInfo(name="betml-log-test", version=version, alias="champion"),
        selections=[
            pb.SelectionPrediction(selection=n, probability=p, odds=o, bookmaker="bet365")
            for n, p, o in zip(NAMES, (0.5, 0.3, 0.2), (2.1, 3.4, 5.5), strict=True)
        ],
    )  # fmt: skip
    response.predicted_at.FromDatetime(T0)
    return response


def logged(engine: Engine) -> pd.DataFrame:
    with session_scope(engine) as session:
        return pd.read_sql(
            select(Prediction).where(Prediction.model_name == "betml-log-test"),
            session.connection(),
        )


@pytest.fixture
def log_store(engine: Engine) -> Engine:
    """The shared store with the league committed (the log writes in its own transactions)."""
    with session_scope(engine) as session:
        write_batch(session, league("log"))
    yield engine
    with session_scope(engine) as session:
        session.execute(delete(Prediction).where(Prediction.model_name == "betml-log-test"))
        session.execute(delete(Event).where(Event.key.like("log:%")))


def test_the_log_writes_answers_in_the_background(log_store: Engine) -> None:
    dropped: list[int] = []

    async def serve_some() -> tuple[list[str], int]:
        log = PredictionLog(lambda: log_store, flush_interval_s=0.05, on_drop=dropped.append)
        ids = [log.record(answer(k), request_id="req-1") for k in ("log:1", "raw:9")]
        waiting = log.pending  # nothing written while answering
        for _ in range(100):
            await asyncio.sleep(0.05)
            if log.written == 6:
                break
        await log.close()
        return ids, waiting

    ids, waiting = asyncio.run(serve_some())
    assert waiting == 6 and len(set(ids)) == 2 and all(ids) and not dropped
    frame = logged(log_store)
    assert len(frame) == 6 and set(frame["prediction_id"]) == set(ids)
    first = frame[frame["prediction_id"] == ids[0]].sort_values("probability", ascending=False)
    assert list(first["selection"]) == list(NAMES)
    assert list(first["probability"]) == [0.5, 0.3, 0.2]
    assert list(first["odds"]) == [2.1, 3.4, 5.5] and set(first["bookmaker"]) == {"bet365"}
    assert set(first["model_version"]) == {"3"} and set(first["request_id"]) == {"req-1"}
    assert first["selection_id"].notna().all()  # the stored event's selections are linked
    assert frame[frame["prediction_id"] == ids[1]]["selection_id"].isna().all()  # raw event


def test_the_log_keeps_rows_while_the_store_is_down_and_drops_beyond_its_bound(
    log_store: Engine, tmp_path: object
) -> None:
    down = create_engine_for(f"sqlite:///{tmp_path}/empty.db")  # no tables: every write fails
    dropped: list[int] = []

    async def serve_some() -> tuple[bool, int, int, str]:
        log = PredictionLog(
            lambda: down, flush_interval_s=10, max_buffered_rows=7, on_drop=dropped.append
        )
        log.record(answer("log:1"))
        log.record(answer("log:2"))
        flushed = await log.flush()
        kept = log.pending
        third = log.record(answer("log:3"))  # 6 waiting + 3 > 7: dropped
        log._engine = lambda: log_store  # the store is back
        await log.close()
        return flushed, kept, log.written, third

    flushed, kept, written, third = asyncio.run(serve_some())
    assert not flushed and kept == 6 and third == "" and dropped == [3]
    assert written == 6 and len(logged(log_store)) == 6
    down.dispose()


def test_the_prediction_id_migration_keeps_existing_rows(tmp_path: object) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/old.db")
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO predictions (created_at, model_name, model_version, event_ref, market,"
            " selection, probability) VALUES ('2024-01-01 00:00:00', 'm', '1', 'e', '1x2', 'home',"
            " 0.5)"
        )
    migrate(engine)
    with session_scope(engine) as session:
        row = session.execute(select(Prediction)).scalar_one()
    assert (row.selection, row.prediction_id, row.bookmaker) == ("home", None, None)
    engine.dispose()
