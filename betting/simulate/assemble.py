"""Turn one simulated season, held as arrays, into an :class:`~betting.batch.EventBatch`.

Sports describe their events as :class:`SeasonEvents` and their markets as
:class:`MarketBlock` s (one block per market key, one row per event); :func:`season_batch`
asks the bookmakers for opening and closing prices and lays everything out as the five frames,
vectorised, without a Python object per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from betting.batch import EventBatch
from betting.schema import MarketType, OddsKind
from betting.simulate.bookmakers import CLOSE_NOISE, OPEN_NOISE, BookmakerPanel, quote
from betting.simulate.calendar import to_utc

#: Source name of every simulated event.
SOURCE = "simulator"
#: Opening prices are captured this many hours before the start (uniform range).
OPEN_LEAD_HOURS = (48.0, 120.0)
#: Columns that hold None for some rows, kept as objects so None stays None.
_NULLABLE = frozenset({"line", "participant"})
_KINDS = np.array([OddsKind.OPEN.value, OddsKind.CLOSE.value], dtype=object)


@dataclass
class SeasonEvents:
    """The events of one simulated season, in kick-off order."""

    sport: str
    season: str
    competition: np.ndarray
    """Competition of each event (object array)."""
    starts_at: np.ndarray
    """Start of each event, ``datetime64`` in UTC."""
    home: np.ndarray | None = None
    """Home team of each event; None for races."""
    away: np.ndarray | None = None
    home_score: np.ndarray | None = None
    """Final score of each event; None for races."""
    away_score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.starts_at)


@dataclass
class MarketBlock:
    """One market key across many events, as arrays with one row per market.

    Selections sit in ``slots`` columns; races with fewer runners than slots leave the trailing
    slots empty (``present`` False).
    """

    market_key: str
    market_type: MarketType
    line: float | None
    event_index: np.ndarray
    """Index of each market's event within the season, shape ``(markets,)``."""
    names: np.ndarray
    """Selection names, object array of shape ``(markets, slots)``."""
    participants: np.ndarray
    """Team or runner behind each selection (None for draw/over/under), same shape."""
    true_probability: np.ndarray
    """True probability of each selection, same shape, rows summing to one."""
    winner: np.ndarray
    """Slot of the winning selection of each market, shape ``(markets,)``."""
    present: np.ndarray | None = None
    """Which slots are selections; None when all are."""

    @property
    def mask(self) -> np.ndarray:
        """Which slots are selections, shape ``(markets, slots)``."""
        if self.present is None:
            return np.ones(self.true_probability.shape, dtype=bool)
        return self.present


def _nullable(values: np.ndarray | None, n: int) -> pd.Series:
    """An object column that keeps ``None`` as None (not NaN)."""
    if values is None:
        return pd.Series([None] * n, dtype=object)
    return pd.Series(values, dtype=object)


def _events_frame(events: SeasonEvents, keys: np.ndarray) -> pd.DataFrame:
    n = len(events)
    return pd.DataFrame(
        {
            "event_key": keys,
            "source": SOURCE,
            "sport": events.sport,
            "competition": events.competition,
            "season": events.season,
            "starts_at": to_utc(events.starts_at),
            "home": _nullable(events.home, n),
            "away": _nullable(events.away, n),
            "home_score": _nullable(
                None if events.home_score is None else events.home_score.tolist(), n
            ),
            "away_score": _nullable(
                None if events.away_score is None else events.away_score.tolist(), n
            ),
        }
    )


def _cells(block: MarketBlock, value: np.ndarray) -> np.ndarray:
    """``value`` broadcast to the block's ``(markets, slots)`` grid, flattened over selections."""
    return np.broadcast_to(value, block.mask.shape)[block.mask]


def _selection_rows(block: MarketBlock) -> dict[str, np.ndarray]:
    return {
        "event": _cells(block, block.event_index[:, None]),
        "market_key": _cells(block, np.array([block.market_key], dtype=object)),
        "name": _cells(block, block.names),
        "position": _cells(block, np.arange(block.mask.shape[1])),
        "participant": _cells(block, block.participants),
        "true_probability": _cells(block, block.true_probability),
    }


def _odds_rows(
    block: MarketBlock,
    panel: BookmakerPanel,
    starts: np.ndarray,
    opened: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Opening and closing prices of every bookmaker, rows ordered selection, bookmaker, kind."""
    mask = block.mask
    prices = np.stack(
        [
            quote(block.true_probability, mask, panel, noise, rng)
            for noise in (OPEN_NOISE, CLOSE_NOISE)
        ],
        axis=-1,
    )  # (books, markets, slots, kinds)
    grid = (*mask.shape, len(panel), len(_KINDS))  # (markets, slots, books, kinds)
    cell = np.broadcast_to(mask[:, :, None, None], grid)
    ev = block.event_index
    opened_here = opened[:, ev].T  # (markets, books)
    closed_here = np.broadcast_to(starts[ev, None], opened_here.shape)
    captured = np.stack([opened_here, closed_here], axis=-1)  # (markets, books, kinds)
    return {
        "event": np.broadcast_to(ev[:, None, None, None], grid)[cell],
        "market_key": np.broadcast_to(np.array([block.market_key], dtype=object), grid)[cell],
        "selection": np.broadcast_to(block.names[:, :, None, None], grid)[cell],
        "bookmaker": np.broadcast_to(np.array(panel.names, dtype=object)[:, None], grid)[cell],
        "kind": np.broadcast_to(_KINDS, grid)[cell],
        "captured_at": np.broadcast_to(captured[:, None, :, :], grid)[cell],
        "price": prices.transpose(1, 2, 0, 3)[cell],
    }


def _frame(
    parts: list[dict[str, np.ndarray]], keys: np.ndarray, columns: list[str]
) -> pd.DataFrame:
    """Concatenate row blocks, order them by event (stable), and name the event by its key."""
    joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    event = joined.pop("event")
    order = np.argsort(event, kind="stable")
    data: dict[str, object] = {"event_key": keys[event[order]]}
    for name in columns[1:]:
        values = joined[name][order]
        if name == "captured_at":
            data[name] = to_utc(values)
        elif name in _NULLABLE:
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = values
    return pd.DataFrame(data, columns=columns)


def season_batch(
    events: SeasonEvents,
    blocks: list[MarketBlock],
    panel: BookmakerPanel,
    rng: np.random.Generator,
    key_prefix: str,
) -> EventBatch:
    """The batch of one season: events, markets, selections, odds (open, close) and results.

    Event keys are ``f"{key_prefix}:{n:06d}"`` with ``n`` counting events in kick-off order.
    """
    n = len(events)
    keys = np.array([f"{key_prefix}:{i:06d}" for i in range(n)], dtype=object)
    starts = events.starts_at.astype("datetime64[m]")
    lead = rng.uniform(*OPEN_LEAD_HOURS, size=(len(panel), n)) * 60.0
    opened = starts[None, :] - np.round(lead).astype("timedelta64[m]")
    markets = [
        {
            "event": block.event_index,
            "market_key": np.full(len(block.event_index), block.market_key, dtype=object),
            "type": np.full(len(block.event_index), block.market_type.value, dtype=object),
            "line": np.full(len(block.event_index), block.line, dtype=object),
        }
        for block in blocks
    ]
    results = [
        {
            "event": block.event_index,
            "market_key": np.full(len(block.event_index), block.market_key, dtype=object),
            "winner": block.names[np.arange(len(block.winner)), block.winner],
        }
        for block in blocks
    ]
    selections = [_selection_rows(block) for block in blocks]
    odds = [_odds_rows(block, panel, starts, opened, rng) for block in blocks]
    return EventBatch(
        events=_events_frame(events, keys),
        markets=_frame(markets, keys, ["event_key", "market_key", "type", "line"]),
        selections=_frame(
            selections,
            keys,
            ["event_key", "market_key", "name", "position", "participant", "true_probability"],
        ),
        odds=_frame(
            odds,
            keys,
            ["event_key", "market_key", "selection", "bookmaker", "kind", "captured_at", "price"],
        ),
        results=_frame(results, keys, ["event_key", "market_key", "winner"]),
    )
