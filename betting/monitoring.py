"""Live scores: the served predictions whose markets have settled, scored by model version.

Every market Serve answers is logged to ``predictions`` (one row per selection, sharing a
``prediction_id``). Once the market's result is stored, its rows can be scored like a holdout:
:func:`score_live` (pure, over a frame) gives per model name and version the number of markets,
log loss, Brier score and ECE (:func:`betting.evaluation.score_probabilities`) and the
closing-line value of the value bets the probabilities imply
(:func:`betting.evaluation.betting_metrics`, against the closing price of the bookmaker whose
price the answer used); :func:`live_scores` reads the frame from the store first
(:func:`settled_predictions`).

A market predicted several times by the same version counts once, with its latest prediction;
rows logged without a ``prediction_id`` (before it existed) are not scored.
"""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from betting.evaluation import (
    METRIC_BETS,
    METRIC_BRIER,
    METRIC_CLV,
    METRIC_ECE,
    METRIC_LOG_LOSS,
    betting_metrics,
    score_probabilities,
)
from betting.schema import Event, Market, OddsKind, OddsSnapshot, Prediction, Result, Selection

#: Columns :func:`score_live` needs.
PREDICTION_COLUMNS = [
    "prediction_id", "created_at", "model_name", "model_version", "event_ref", "market",
    "selection", "probability", "odds", "won", "closing_odds",
]  # fmt: skip
#: Columns of :func:`score_live` and :func:`live_scores`, after the model name and version.
SCORE_COLUMNS = [
    "markets", METRIC_LOG_LOSS, METRIC_BRIER, METRIC_ECE, METRIC_CLV, "clv_bets", "first_at",
    "last_at",
]  # fmt: skip
MODEL_COLUMNS = ["model_name", "model_version"]


def _latest_per_market(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each (model version, event, market)'s latest prediction."""
    heads = frame.sort_values(["created_at", "prediction_id"]).drop_duplicates(
        [*MODEL_COLUMNS, "event_ref", "market"], keep="last"
    )
    return frame[frame["prediction_id"].isin(heads["prediction_id"])]


def _clv(rows: pd.DataFrame, min_edge: float) -> tuple[float, int]:
    """CLV of the value bets over the markets whose every row has a price and a closing price."""
    priced = rows[["odds", "closing_odds"]].notna().all(axis=1) & (rows["closing_odds"] > 1.0)
    complete = priced.groupby(rows["prediction_id"]).transform("all")
    data = rows[complete]
    if data.empty:
        return math.nan, 0
    metrics = betting_metrics(
        data["probability"], data["odds"], data["won"], data["prediction_id"],
        data["created_at"].astype("int64"), min_edge=min_edge, closing_odds=data["closing_odds"],
    )  # fmt: skip
    return metrics[METRIC_CLV], int(metrics[METRIC_BETS])


def score_live(frame: pd.DataFrame, *, min_edge: float = 0.02) -> pd.DataFrame:
    """Scores of settled predictions per model name and version.

    Args:
        frame: one row per predicted selection with :data:`PREDICTION_COLUMNS`; ``won`` is 1/0
            (NaN for an unsettled market: left out), ``closing_odds`` NaN where none is stored.
        min_edge: lowest edge of a value bet, for closing-line value.

    Returns:
        One row per model name and version (sorted) with :data:`SCORE_COLUMNS`: ``markets``
        scored, log loss, Brier, ECE, ``clv`` (mean of odds / closing odds - 1 over the value
        bets of markets with closing prices, NaN without any) and ``clv_bets``, and the first
        and last prediction time.
    """
    settled = frame[frame["won"].notna()]
    settled = settled[settled.groupby("prediction_id")["won"].transform("sum") == 1]
    settled = _latest_per_market(settled)
    out = []
    for (name, version), rows in settled.groupby(MODEL_COLUMNS, sort=True):
        scores = score_probabilities(rows["probability"], rows["won"], rows["prediction_id"])
        clv, clv_bets = _clv(rows, min_edge)
        out.append({
            "model_name": name, "model_version": version,
            "markets": rows["prediction_id"].nunique(),
            **{m: scores[m] for m in (METRIC_LOG_LOSS, METRIC_BRIER, METRIC_ECE)},
            METRIC_CLV: clv, "clv_bets": clv_bets,
            "first_at": rows["created_at"].min(), "last_at": rows["created_at"].max(),
        })  # fmt: skip
    return pd.DataFrame(out, columns=[*MODEL_COLUMNS, *SCORE_COLUMNS])


def settled_predictions(session: Session, since: datetime | None = None) -> pd.DataFrame:
    """Logged predictions of stored, settled markets since ``since``: :data:`PREDICTION_COLUMNS`.

    Predictions are matched to the store by event key, market key and selection name, so a
    prediction of a raw event counts once that event and its result are stored.
    """
    won = (Result.winning_selection_id == Selection.id).label("won")
    stmt = (
        select(
            Prediction.prediction_id, Prediction.created_at, Prediction.model_name,
            Prediction.model_version, Prediction.event_ref, Prediction.market,
            Prediction.selection, Prediction.probability, Prediction.odds, Prediction.bookmaker,
            Selection.id.label("selection_id"), won,
        )
        .join(Event, Event.key == Prediction.event_ref)
        .join(Market, and_(Market.event_id == Event.id, Market.key == Prediction.market))
        .join(Selection, and_(Selection.market_id == Market.id,
                              Selection.name == Prediction.selection))
        .join(Result, Result.market_id == Market.id)
        .where(Prediction.prediction_id.is_not(None))
    )  # fmt: skip
    if since is not None:
        stmt = stmt.where(Prediction.created_at >= since)
    frame = pd.read_sql(stmt, session.connection())
    if frame.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    frame["won"] = frame["won"].astype(float)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    closing = _closing_prices(session, frame["selection_id"].unique().tolist())
    frame = frame.merge(closing, on=["selection_id", "bookmaker"], how="left")
    return frame[PREDICTION_COLUMNS]


def _closing_prices(session: Session, selection_ids: list[int]) -> pd.DataFrame:
    """The latest closing price of each (selection, bookmaker) among ``selection_ids``."""
    frames = []
    for start in range(0, len(selection_ids), 500):
        chunk = [int(i) for i in selection_ids[start : start + 500]]
        latest = (
            select(
                OddsSnapshot.selection_id, OddsSnapshot.bookmaker,
                func.max(OddsSnapshot.captured_at).label("captured_at"),
            )
            .where(OddsSnapshot.kind == OddsKind.CLOSE.value, OddsSnapshot.selection_id.in_(chunk))
            .group_by(OddsSnapshot.selection_id, OddsSnapshot.bookmaker)
            .subquery()
        )  # fmt: skip
        stmt = select(
            OddsSnapshot.selection_id, OddsSnapshot.bookmaker,
            OddsSnapshot.price.label("closing_odds"),
        ).join(latest, and_(
            OddsSnapshot.selection_id == latest.c.selection_id,
            OddsSnapshot.bookmaker == latest.c.bookmaker,
            OddsSnapshot.captured_at == latest.c.captured_at,
            OddsSnapshot.kind == OddsKind.CLOSE.value,
        ))  # fmt: skip
        frames.append(pd.read_sql(stmt, session.connection()))
    return pd.concat(frames, ignore_index=True)


def live_scores(
    session: Session, since: datetime | None = None, *, min_edge: float = 0.02
) -> pd.DataFrame:
    """:func:`score_live` of the settled predictions logged since ``since`` (all when None)."""
    return score_live(settled_predictions(session, since), min_edge=min_edge)
