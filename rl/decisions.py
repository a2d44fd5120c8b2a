"""The decision table the staking agent and the strategy backtests work on.

One row per selection of the markets to bet on, in start-time order, with what a bettor knows
before the event (features, the outcome model's probability, the odds) and, apart, how it ended
(``won``). The model probabilities are out of sample: each season's come from a model fitted on
the seasons before it only (season walk-forward), never from a fit that saw the season, so the
agent trains on the same kind of probabilities it will meet live. The first
``min_train_seasons`` seasons only train models and get no decisions.

Columns (:data:`DECISION_COLUMNS`, plus ``betting.features.FEATURE_COLUMNS``):

* ``event_key``, ``market_key``, ``selection``, ``starts_at`` (UTC), ``season``;
* ``p_model``: the out-of-sample model probability, summing to 1 per market;
* ``p_market``: the margin-free closing probability (proportional margin removal);
* ``odds``: the price a bet is placed at (best closing price, else the mean);
* ``closing_odds``: the reference closing price (Pinnacle on real data, else the mean), for CLV;
* ``won``: 1/0; ``true_probability``: the simulator's truth (NaN on real data).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from betting.errors import InvalidInput
from betting.evaluation import market_ids_of, market_probabilities_from_odds
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION
from betting.splits import season_splits
from cluster.artifacts import ArtifactMeta

logger = logging.getLogger(__name__)

DECISION_COLUMNS = [
    "event_key", "market_key", "selection", "starts_at", "season", "p_model", "p_market",
    "odds", "closing_odds", "won", "true_probability",
]  # fmt: skip


class ModelSource(BaseModel):
    """Which outcome model gives the agent its probabilities (refitted per season)."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["ensemble", "classifier"] = "ensemble"
    params: dict[str, Any] = Field(
        default_factory=lambda: {
            "kind": "lightgbm",
            "member_params": {
                "lightgbm": {
                    "n_estimators": 150,
                    "num_leaves": 8,
                    "min_child_samples": 60,
                    "learning_rate": 0.05,
                }
            },
        }
    )
    """The family's hyperparameters (a sweep's best, typically)."""
    min_train_seasons: int = Field(1, ge=1)
    """Seasons that only train the first model and get no decisions."""


def out_of_sample_probabilities(
    table: pd.DataFrame, source: ModelSource, *, sport: str, market: str, seed: int = 0
) -> pd.Series:
    """``p_model`` for every row of the seasons after the first ``min_train_seasons``, each
    season predicted by a model fitted on the seasons before it; NaN on the first ones."""
    seasons = sorted(table["season"].unique())
    tested = len(seasons) - source.min_train_seasons
    if tested < 1:
        raise InvalidInput(
            f"{len(seasons)} season(s) leave none to decide on after min_train_seasons="
            f"{source.min_train_seasons}"
        )
    from cluster.configs import family_functions  # training code: kept out of serving imports

    fit, predictor_path = family_functions(source.family)
    p = pd.Series(np.nan, index=table.index, dtype=float)
    for split in season_splits(table["season"], test_seasons=tested):
        train, test = table.iloc[split.train], table.iloc[split.test]
        meta = ArtifactMeta(
            family=source.family, predictor=predictor_path, sport=sport, market=market,
            feature_columns=list(FEATURE_COLUMNS), feature_schema_version=FEATURE_SCHEMA_VERSION,
        )  # fmt: skip
        predictor = fit(train, source.params, meta, seed)
        p.iloc[split.test] = predictor.predict_proba(test)
        logger.info("model probabilities for season %s from %d earlier rows", split.test_start,
                    len(train))  # fmt: skip
    return p


def decision_table(
    table: pd.DataFrame, source: ModelSource, *, sport: str, market: str, seed: int = 0
) -> pd.DataFrame:
    """The decision table of a feature table (``cluster.training.load_table``'s output).

    Markets without a price or closing price on every selection are left out.
    """
    frame = table.sort_values(["starts_at", "event_key"], kind="stable").reset_index(drop=True)
    frame["p_model"] = out_of_sample_probabilities(frame, source, sport=sport, market=market,
                                                   seed=seed)  # fmt: skip
    frame["odds"] = frame["close_best"].fillna(frame["close_mean"])
    frame["closing_odds"] = frame["close_ref"].fillna(frame["close_mean"])
    if "true_probability" not in frame.columns:
        frame["true_probability"] = np.nan
    ids = market_ids_of(frame)
    usable = frame[["p_model", "odds", "closing_odds"]].notna().all(axis=1) & (frame["odds"] > 1)
    usable &= frame["closing_odds"] > 1
    complete = np.bincount(ids, weights=~usable.to_numpy()) == 0
    frame = frame[complete[ids]].reset_index(drop=True)
    if frame.empty:
        raise InvalidInput("no market has model probabilities and prices on every selection")
    frame["p_market"] = market_probabilities_from_odds(frame["closing_odds"], market_ids_of(frame))
    return frame[[*DECISION_COLUMNS, *FEATURE_COLUMNS]]


def cached_decision_table(
    table: pd.DataFrame,
    source: ModelSource,
    *,
    sport: str,
    market: str,
    seed: int,
    folder: Path,
) -> pd.DataFrame:
    """:func:`decision_table`, kept as Parquet in ``folder`` under a key of the data, the model
    source and the feature version, so repeated trainings and backtests fit the models once."""
    from cluster.tracking import data_hash

    key = hashlib.sha256(
        json.dumps(
            [data_hash(table[["event_key", "selection", "won"]]), source.model_dump(), sport,
             market, seed, FEATURE_SCHEMA_VERSION], sort_keys=True, default=str,
        ).encode()
    ).hexdigest()[:16]  # fmt: skip
    path = Path(folder) / f"decisions-{key}.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    decisions = decision_table(table, source, sport=sport, market=market, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    decisions.to_parquet(partial, index=False)
    partial.replace(path)  # never a half-written table under the real name
    return decisions
