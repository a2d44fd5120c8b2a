"""The in-memory form of events on their way into the store.

Ingestion (football-data CSVs) and the simulator both produce an :class:`EventBatch`: five
pandas frames linked by natural keys rather than database ids. :func:`betting.store.write_batch`
is the one writer that turns a batch into rows, idempotently.

Frames and their columns (``event_key`` is unique per event across all sources;
``market_key`` is unique within an event, e.g. ``"1x2"`` or ``"total:2.5"``):

- ``events``: event_key, source, sport, competition, season, starts_at (tz-aware UTC),
  home, away (None for races), home_score, away_score (None when not played / races)
- ``markets``: event_key, market_key, type (a :class:`betting.schema.MarketType` value), line
- ``selections``: event_key, market_key, name, position (0-based order within the market),
  participant (team/runner, None for draw/over/under), true_probability (simulator only)
- ``odds``: event_key, market_key, selection, bookmaker, kind (open/pre_close/close),
  captured_at (tz-aware UTC), price (decimal odds > 1)
- ``results``: event_key, market_key, winner (the winning selection's name)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from betting.errors import InvalidInput
from betting.schema import MarketType, OddsKind

EVENT_COLUMNS = [
    "event_key", "source", "sport", "competition", "season", "starts_at",
    "home", "away", "home_score", "away_score",
]  # fmt: skip
MARKET_COLUMNS = ["event_key", "market_key", "type", "line"]
SELECTION_COLUMNS = [
    "event_key", "market_key", "name", "position", "participant", "true_probability",
]  # fmt: skip
ODDS_COLUMNS = [
    "event_key", "market_key", "selection", "bookmaker", "kind", "captured_at", "price",
]  # fmt: skip
RESULT_COLUMNS = ["event_key", "market_key", "winner"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class EventBatch:
    """Events with their markets, selections, odds and results, keyed naturally."""

    events: pd.DataFrame = field(default_factory=lambda: _empty(EVENT_COLUMNS))
    markets: pd.DataFrame = field(default_factory=lambda: _empty(MARKET_COLUMNS))
    selections: pd.DataFrame = field(default_factory=lambda: _empty(SELECTION_COLUMNS))
    odds: pd.DataFrame = field(default_factory=lambda: _empty(ODDS_COLUMNS))
    results: pd.DataFrame = field(default_factory=lambda: _empty(RESULT_COLUMNS))

    def __len__(self) -> int:
        return len(self.events)

    @classmethod
    def concat(cls, batches: list[EventBatch]) -> EventBatch:
        """One batch holding every event of ``batches``."""
        if not batches:
            return cls()
        return cls(
            *(
                pd.concat([getattr(b, name) for b in batches], ignore_index=True)
                for name in ("events", "markets", "selections", "odds", "results")
            )
        )

    def validate(self) -> None:
        """Check the batch is internally consistent; raise :class:`InvalidInput` if not."""
        for name, columns in (
            ("events", EVENT_COLUMNS),
            ("markets", MARKET_COLUMNS),
            ("selections", SELECTION_COLUMNS),
            ("odds", ODDS_COLUMNS),
            ("results", RESULT_COLUMNS),
        ):
            missing = set(columns) - set(getattr(self, name).columns)
            if missing:
                raise InvalidInput(f"batch.{name} lacks columns {sorted(missing)}")
        ev = self.events
        if ev["event_key"].duplicated().any():
            dup = ev.loc[ev["event_key"].duplicated(), "event_key"].iloc[0]
            raise InvalidInput(f"batch.events: event_key {dup!r} appears twice")
        market_ids = self.markets[["event_key", "market_key"]]
        if market_ids.duplicated().any():
            raise InvalidInput("batch.markets: a (event_key, market_key) appears twice")
        bad_types = set(self.markets["type"].unique()) - {t.value for t in MarketType}
        if bad_types:
            raise InvalidInput(f"batch.markets: unknown market type(s) {sorted(bad_types)}")
        if not self.markets["event_key"].isin(ev["event_key"]).all():
            raise InvalidInput("batch.markets: a market refers to an event not in the batch")
        sel_ids = self.selections[["event_key", "market_key", "name"]]
        if sel_ids.duplicated().any():
            raise InvalidInput("batch.selections: a selection name appears twice in a market")
        bad_kinds = set(self.odds["kind"].unique()) - {k.value for k in OddsKind}
        if bad_kinds:
            raise InvalidInput(f"batch.odds: unknown odds kind(s) {sorted(bad_kinds)}")
        if len(self.odds) and not (pd.to_numeric(self.odds["price"]) > 1.0).all():
            raise InvalidInput("batch.odds: every decimal price must be above 1.0")
        if self.results[["event_key", "market_key"]].duplicated().any():
            raise InvalidInput("batch.results: a market has more than one result")
        winners = self.results.rename(columns={"winner": "name"}).merge(
            sel_ids.drop_duplicates(), on=["event_key", "market_key", "name"], how="left",
            indicator=True,
        )  # fmt: skip
        unknown = winners[winners["_merge"] == "left_only"]
        if len(unknown):
            row = unknown.iloc[0]
            raise InvalidInput(
                f"batch.results: winner {row['name']!r} of {row.event_key}/{row.market_key}"
                " is not a selection of that market"
            )
