"""The selection frame: one row per selection, the input of every feature function.

Training reads it from the store (:func:`betting.store.load_batch`), online serving builds it
from a request's raw event, and both go through :func:`selection_frame`, so offline and online
features of the same event are computed by the same code.

Columns:
    event_key, sport, competition, season, starts_at, home, away, home_score, away_score,
    market_key, market_type, line, selection, position, participant, true_probability,
    won (1.0 / 0.0, NaN while unsettled), and for each odds kind ``k`` in open, pre_close, close:
    ``k_mean`` (mean price over real bookmakers), ``k_best`` (best price, pseudo-bookmakers such
    as ``market_max`` included), ``k_n`` (number of real bookmakers), ``k_implied_std`` (spread
    of the bookmakers' implied probabilities) and ``k_ref`` (the reference bookmaker's price).
Rows are ordered by starts_at, event_key, market_key, position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from betting.batch import EventBatch
from betting.schema import OddsKind

#: Bookmakers whose names start with this are aggregates of the market (max, average), not books.
PSEUDO_BOOKMAKER_PREFIX = "market_"
DEFAULT_REFERENCE_BOOKMAKER = "pinnacle"
ODDS_KINDS = [k.value for k in OddsKind]
ODDS_STATS = ["mean", "best", "n", "implied_std", "ref"]
ODDS_COLUMNS = [f"{k}_{s}" for k in ODDS_KINDS for s in ODDS_STATS]

_SEL_KEY = ["event_key", "market_key", "selection"]


def aggregate_odds(odds: pd.DataFrame, reference_bookmaker: str) -> pd.DataFrame:
    """Per-selection price statistics for each odds kind, wide, indexed by the selection key.

    When a bookmaker has several snapshots of one kind, its latest one counts.
    """
    if odds.empty:
        index = pd.MultiIndex.from_tuples([], names=_SEL_KEY)
        return pd.DataFrame(index=index, columns=ODDS_COLUMNS, dtype=float)
    latest = odds.sort_values("captured_at").drop_duplicates(
        [*_SEL_KEY, "bookmaker", "kind"], keep="last"
    )
    latest = latest.assign(price=latest["price"].astype(float))
    real = latest[~latest["bookmaker"].str.startswith(PSEUDO_BOOKMAKER_PREFIX)]
    real = real.assign(implied=1.0 / real["price"])
    keys = [*_SEL_KEY, "kind"]
    stats = real.groupby(keys, sort=False).agg(
        mean=("price", "mean"), n=("price", "size"), implied_std=("implied", "std")
    )
    best = latest.groupby(keys, sort=False)["price"].max().rename("best")
    ref = latest[latest["bookmaker"] == reference_bookmaker].set_index(keys)["price"].rename("ref")
    long = stats.join(best, how="outer").join(ref, how="left")
    long["implied_std"] = long["implied_std"].fillna(0.0).where(long["n"] > 0)
    wide = long.unstack("kind")
    wide.columns = [f"{kind}_{stat}" for stat, kind in wide.columns]
    return wide.reindex(columns=ODDS_COLUMNS).astype(float)


def selection_frame(
    batch: EventBatch, reference_bookmaker: str = DEFAULT_REFERENCE_BOOKMAKER
) -> pd.DataFrame:
    """Flatten a batch into one row per selection with its event, market, result and odds."""
    events = batch.events
    markets = batch.markets.rename(columns={"type": "market_type"})
    selections = batch.selections.rename(columns={"name": "selection"})
    frame = selections.merge(markets, on=["event_key", "market_key"], how="inner").merge(
        events, on="event_key", how="inner"
    )
    results = batch.results.rename(columns={"winner": "selection"}).assign(_won=1.0)
    settled = batch.results[["event_key", "market_key"]].assign(_settled=True)
    frame = frame.merge(results, on=_SEL_KEY, how="left").merge(
        settled, on=["event_key", "market_key"], how="left"
    )
    frame["won"] = np.where(frame["_settled"].eq(True), frame["_won"].fillna(0.0), np.nan)
    frame = frame.drop(columns=["_won", "_settled"])
    odds = aggregate_odds(batch.odds, reference_bookmaker)
    frame = frame.join(odds, on=_SEL_KEY)
    frame["starts_at"] = pd.to_datetime(frame["starts_at"], utc=True)
    for col in ("position",):
        frame[col] = frame[col].astype(int)
    for col in ("line", "true_probability", "home_score", "away_score"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame = frame.sort_values(["starts_at", "event_key", "market_key", "position"])
    return frame.reset_index(drop=True)
