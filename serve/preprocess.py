"""The market view of an event: what betml reads from its prices before any model runs.

For each market of an event (raw or stored): each bookmaker's latest complete price set, its
overround and margin-free probabilities (proportional and Shin, :mod:`betting.odds`), the best
price per selection, and the consensus (the mean of the bookmakers' Shin probabilities). The Go
service uses it to clean and compare prices the way betml's features do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from betting.odds import implied_probabilities, overround, remove_margin
from serve.online import EventRows

#: Bookmaker names that are market aggregates, not bookmakers one can bet with.
AGGREGATE_PREFIX = "market_"


def latest_prices(quotes: pd.DataFrame) -> pd.DataFrame:
    """Each bookmaker's latest price per selection (any kind), aggregates left out."""
    quotes = quotes[~quotes["bookmaker"].str.startswith(AGGREGATE_PREFIX)]
    order = quotes.sort_values("captured_at", kind="stable")
    return order.groupby(["market_key", "selection", "bookmaker"], sort=False).tail(1)


def market_view(event: EventRows) -> dict[str, Any]:
    """The event's markets as JSON-ready dicts (see the module docstring)."""
    prices = latest_prices(event.quotes)
    markets = []
    for market_key, rows in event.rows.groupby("market_key", sort=False):
        selections = [str(s) for s in rows["selection"]]
        table = prices[prices["market_key"] == market_key].pivot_table(
            index="bookmaker", columns="selection", values="price", aggfunc="last"
        )
        complete = table.reindex(columns=selections).dropna()
        books = []
        for bookmaker, price_row in complete.iterrows():
            odds = price_row.to_numpy(dtype=float)
            books.append({
                "bookmaker": str(bookmaker),
                "odds": _named(selections, odds),
                "overround": float(overround(odds)),
                "implied": _named(selections, implied_probabilities(odds)),
                "proportional": _named(selections, remove_margin(odds, "proportional")),
                "shin": _named(selections, remove_margin(odds, "shin")),
            })  # fmt: skip
        consensus = (
            np.mean([[b["shin"][s] for s in selections] for b in books], axis=0)
            if books
            else np.full(len(selections), np.nan)
        )
        best = table.reindex(columns=selections)
        markets.append({
            "market_key": str(market_key),
            "selections": [
                {
                    "selection": s,
                    "best_odds": _finite(best[s].max()),
                    "best_bookmaker": str(best[s].idxmax()) if best[s].notna().any() else None,
                    "consensus_probability": _finite(consensus[i]),
                }
                for i, s in enumerate(selections)
            ],
            "bookmakers": books,
            "incomplete_bookmakers": sorted(str(b) for b in set(table.index) - set(complete.index)),
        })  # fmt: skip
    return {"event_key": event.event_key, "sport": event.sport, "markets": markets}


def _named(selections: list[str], values: Any) -> dict[str, float]:
    return dict(zip(selections, np.atleast_1d(values).tolist(), strict=True))


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
