"""The training pipeline every outcome-model family shares.

A family only knows how to fit a :class:`~cluster.artifacts.Predictor` on a training table.
Everything around it is here, once: reading the events from the store, building features,
holding out the latest seasons, scoring the holdout against the market and (on simulated data)
the truth, writing the artifact, logging the run to MLflow with its tags and training summary,
and registering the model as the challenger.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from betting.errors import InvalidInput
from betting.evaluation import holdout_report
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, build_features
from betting.frames import selection_frame
from betting.store import load_batch, session_scope
from cluster import tracking
from cluster.artifacts import ArtifactMeta, Predictor, load_predictor, save_artifact
from cluster.db import get_engine
from cluster.importance import IMPORTANCE_ARTIFACT, permutation_importance
from cluster.settings import get_settings
from cluster.tracking import market_slug

logger = logging.getLogger(__name__)

ARTIFACT_PATH = "model"
HOLDOUT_PREFIX = "holdout/"
ROW_MODEL = "model"

#: Fits one family's predictor on a training table; ``meta`` describes the artifact to build.
FitFn = Callable[[pd.DataFrame, dict[str, Any], ArtifactMeta, int], Predictor]


class DataConfig(BaseModel):
    """Which stored events a model trains and is judged on."""

    model_config = ConfigDict(extra="forbid")

    sport: str = "football"
    """Sport of the events (features are built per sport)."""
    market: str = "1x2"
    """Market key the model predicts (``1x2``, ``total:2.5``, ``win``, ``moneyline``)."""
    competitions: list[str] | None = None
    """Only these competitions (all when unset)."""
    seasons: list[str] | None = None
    """Only these seasons (all when unset)."""
    holdout_seasons: int = Field(1, ge=1)
    """The latest seasons, never trained on, that every model of a run is judged on."""
    min_edge: float = Field(0.02, ge=0.0)
    """Edge a selection needs to count as a value bet in the betting view of the holdout."""


def load_table(data: DataConfig) -> pd.DataFrame:
    """Settled selections of ``data``'s market with their features, ordered by start time."""
    with session_scope(get_engine()) as session:
        batch = load_batch(
            session, sport=data.sport, competition=data.competitions, seasons=data.seasons
        )
    if batch.events.empty:
        raise InvalidInput(
            f"no stored {data.sport} events match {data.model_dump(exclude_none=True)}; "
            "simulate or import some first (betml data simulate / import-football)"
        )
    table = build_features(selection_frame(batch))
    table = table[(table["market_key"] == data.market) & table["won"].notna()]
    if table.empty:
        raise InvalidInput(f"no settled {data.market!r} markets among the selected events")
    return table.reset_index(drop=True)


def split_holdout(table: pd.DataFrame, holdout_seasons: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows (earlier seasons) and holdout rows (the latest ``holdout_seasons``)."""
    seasons = sorted(table["season"].unique())
    if len(seasons) <= holdout_seasons:
        raise InvalidInput(
            f"{len(seasons)} season(s) {seasons} leave nothing to train on with "
            f"holdout_seasons={holdout_seasons}"
        )
    held = set(seasons[-holdout_seasons:])
    is_held = table["season"].isin(held)
    return table[~is_held].reset_index(drop=True), table[is_held].reset_index(drop=True)


def holdout_id(data: DataConfig, holdout: pd.DataFrame) -> str:
    """Names the holdout: models are compared only on the same one."""
    seasons = ",".join(sorted(holdout["season"].unique()))
    digest = tracking.data_hash(holdout[["event_key", "selection", "won"]])[:12]
    return f"{data.sport}/{data.market}/{seasons}/{digest}"


def evaluate(predictor: Predictor, holdout: pd.DataFrame, *, min_edge: float) -> pd.DataFrame:
    """The holdout table: the model next to the market's closing odds, the truth and base rates."""
    frame = holdout.copy()
    frame["p_model"] = predictor.predict_proba(frame)
    frame["bet_odds"] = frame["close_best"].fillna(frame["close_mean"])
    frame["closing_odds"] = frame["close_ref"].fillna(frame["close_mean"])
    has_truth = frame["true_probability"].notna().all()
    return holdout_report(
        frame, "p_model", odds_col="bet_odds", closing_col="closing_odds",
        true_col="true_probability" if has_truth else None, min_edge=min_edge,
    )  # fmt: skip


def report_metrics(report: pd.DataFrame) -> dict[str, float]:
    """Flat ``holdout/<row>/<metric>`` metrics of a holdout table, NaNs left out."""
    metrics = {}
    for row, values in report.iterrows():
        for metric, value in values.items():
            if isinstance(value, int | float | np.floating) and np.isfinite(value):
                metrics[f"{HOLDOUT_PREFIX}{row}/{metric}"] = float(value)
    return metrics


@dataclass
class TrainResult:
    """What one training run produced."""

    run_id: str
    model_name: str
    artifact: Path
    report: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    version: int | None = None

    @property
    def holdout_log_loss(self) -> float:
        return float(self.report.loc[ROW_MODEL, "log_loss"])


def train_and_log(
    family: str,
    fit: FitFn,
    params: dict[str, Any],
    data: DataConfig,
    *,
    predictor_path: str,
    seed: int = 0,
    table: pd.DataFrame | None = None,
    register: bool = True,
    extra_summary: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit ``family`` on the training seasons, judge it on the holdout, log and register it.

    Args:
        family: the family's name in registered model names (``lightgbm``, ``keras``...).
        fit: the family's fit function.
        params: the family's hyperparameters (logged as MLflow params).
        data: which events to train and judge on.
        predictor_path: ``module:Class`` of the predictor that loads the artifact.
        seed: random seed handed to the family.
        table: a table already loaded by :func:`load_table` (read from the store when unset).
        register: register the artifact as ``betml-<family>-<sport>-<market>`` (challenger).
        extra_summary: more facts for the training summary (search used, trials...).
    """
    started = time.perf_counter()
    table = load_table(data) if table is None else table
    train, holdout = split_holdout(table, data.holdout_seasons)
    meta = ArtifactMeta(
        family=family, predictor=predictor_path, sport=data.sport, market=data.market,
        feature_columns=list(FEATURE_COLUMNS), feature_schema_version=FEATURE_SCHEMA_VERSION,
        config={"params": params, "data": data.model_dump(), "seed": seed},
    )  # fmt: skip
    predictor = fit(train, params, meta, seed)
    fit_seconds = time.perf_counter() - started
    report = evaluate(predictor, holdout, min_edge=data.min_edge)
    predictor.meta.metrics.update(
        {k: v for k, v in report_metrics(report).items() if k.startswith(f"{HOLDOUT_PREFIX}model")}
    )
    name = tracking.model_name(family, data.sport, market_slug(data.market))
    settings = get_settings()
    tracking.configure_mlflow(settings)
    tags = tracking.run_tags(
        data_hash=tracking.data_hash(table[["event_key", "selection", "won", *FEATURE_COLUMNS]]),
        feature_version=FEATURE_SCHEMA_VERSION, config=meta.config, family=family,
        sport=data.sport, market=market_slug(data.market),
    )  # fmt: skip
    with mlflow.start_run(run_name=f"{name}-train", tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params({k: v for k, v in _flat(params).items()})
        mlflow.log_metrics(report_metrics(report))
        importance = permutation_importance(predictor, holdout, seed=seed)
        mlflow.log_dict(importance.to_dict("list"), IMPORTANCE_ARTIFACT)
        artifact = save_artifact(predictor, settings.storage_root / "models" / run_id)
        mlflow.log_artifacts(str(artifact), ARTIFACT_PATH)
    summary = {
        "model": name, "family": family, "run_id": run_id, "sport": data.sport,
        "market": data.market, "features": list(FEATURE_COLUMNS),
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "samples": {"train_rows": len(train), "holdout_rows": len(holdout),
                    "train_markets": _markets(train), "holdout_markets": _markets(holdout),
                    "train_seasons": sorted(train["season"].unique()),
                    "holdout_seasons": sorted(holdout["season"].unique())},
        "params": params, "metrics": report.reset_index(names="row").to_dict("records"),
        "calibration": predictor.meta.config.get("calibration_chosen", "none"),
        "validation": {k: v for k, v in predictor.meta.metrics.items()
                       if not k.startswith(HOLDOUT_PREFIX)},
        "timing": {"fit_seconds": round(fit_seconds, 3),
                   "total_seconds": round(time.perf_counter() - started, 3)},
        **(extra_summary or {}),
    }  # fmt: skip
    tracking.log_summary(summary, run_id, folder=artifact.parent / f"{run_id}-summary")
    result = TrainResult(run_id, name, artifact, report, summary)
    if register:
        result.version = tracking.register(
            run_id, ARTIFACT_PATH, name, holdout_log_loss=result.holdout_log_loss,
            holdout_id=holdout_id(data, holdout),
        )  # fmt: skip
    logger.info("trained %s: holdout log loss %.4f", name, result.holdout_log_loss)
    return result


def _markets(table: pd.DataFrame) -> int:
    return int(table[["event_key", "market_key"]].drop_duplicates().shape[0])


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: Rows of a holdout table that do not depend on the model: the same for every model judged on
#: one holdout.
REFERENCE_ROWS = ("market_close", "truth", "base_rate")


def holdout_comparison(
    models: list[tuple[str, int]], *, client: Any = None
) -> dict[str, pd.DataFrame]:
    """The holdout tables of registered model versions side by side, one table per holdout.

    Each ``(name, version)`` gives a row ``"<name> v<version>"`` from the holdout metrics its
    training run logged; the market, the truth (the floor, on simulated data) and the base rate
    follow from the first run judged on that holdout. Tables are keyed by holdout id (models
    judged on different seasons or data are never mixed).
    """
    client = client or mlflow.MlflowClient()
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for name, version in models:
        model_version = client.get_model_version(name, str(version))
        holdout = model_version.tags.get(tracking.TAG_HOLDOUT_ID, "unknown holdout")
        metrics = client.get_run(model_version.run_id).data.metrics
        rows = tables.setdefault(holdout, {})
        rows[f"{name} v{version}"] = _row_metrics(metrics, ROW_MODEL)
        for reference in REFERENCE_ROWS:
            if reference not in rows and (values := _row_metrics(metrics, reference)):
                rows[reference] = values
    out = {}
    for holdout, rows in tables.items():
        references = {k: rows.pop(k) for k in REFERENCE_ROWS if k in rows}
        out[holdout] = pd.DataFrame.from_dict({**rows, **references}, orient="index")
    return out


def _row_metrics(metrics: dict[str, float], row: str) -> dict[str, float]:
    prefix = f"{HOLDOUT_PREFIX}{row}/"
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}


def rescore_version(
    name: str, version: int, data: DataConfig, *, table: pd.DataFrame | None = None
) -> float:
    """Judge a registered version on ``data``'s current holdout and record that score on it.

    New events change the holdout (its id is a hash of its rows), so a champion scored before
    they arrived cannot be compared with a challenger trained after: re-scoring puts both on the
    same holdout. The version's holdout tags are replaced (the previous values are kept in tags
    ``betml.previous_holdout_*``); a run ``<name>-v<version>-rescore`` logs the new holdout table.

    Returns:
        The version's log loss on the holdout.
    """
    table = load_table(data) if table is None else table
    _, holdout = split_holdout(table, data.holdout_seasons)
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory(prefix="betml-rescore-") as tmp:
        predictor = load_predictor(tracking.download_model(f"{name}/{version}", tmp, client=client))
        report = evaluate(predictor, holdout, min_edge=data.min_edge)
    log_loss = float(report.loc[ROW_MODEL, "log_loss"])
    new_id = holdout_id(data, holdout)
    old = client.get_model_version(name, str(version)).tags
    with mlflow.start_run(run_name=f"{name}-v{version}-rescore"):
        mlflow.log_metrics(report_metrics(report))
        mlflow.set_tags({"betml.rescored_model": name, "betml.rescored_version": str(version),
                         tracking.TAG_HOLDOUT_ID: new_id})  # fmt: skip
    for tag in (tracking.TAG_HOLDOUT_ID, tracking.TAG_HOLDOUT_LOG_LOSS):
        if tag in old:
            client.set_model_version_tag(name, str(version), f"betml.previous_{tag[6:]}", old[tag])
    client.set_model_version_tag(name, str(version), tracking.TAG_HOLDOUT_LOG_LOSS, repr(log_loss))
    client.set_model_version_tag(name, str(version), tracking.TAG_HOLDOUT_ID, new_id)
    logger.info("re-scored %s v%s on holdout %s: log loss %.4f", name, version, new_id, log_loss)
    return log_loss


def promote_challenger(
    name: str, data: DataConfig, *, table: pd.DataFrame | None = None
) -> tracking.PromotionDecision:
    """The promotion gate, with the champion re-scored on the challenger's holdout when the two
    were judged on different ones (see :func:`rescore_version`); otherwise :func:`tracking.promote`.
    """
    decision = tracking.promote(name)
    if (
        decision.promoted
        or decision.champion_version is None
        or decision.champion_version == decision.challenger_version
        or decision.champion_holdout_id == decision.challenger_holdout_id
        or decision.score_name != tracking.SCORE_LOG_LOSS
    ):
        return decision
    rescore_version(name, decision.champion_version, data, table=table)
    return tracking.promote(name)
