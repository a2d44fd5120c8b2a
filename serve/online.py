"""Online features: the training feature code over the kept feature state, never the history.

A raw event becomes a batch of one unsettled event (:mod:`serve.requests`); its rows come from
:func:`betting.features.read_features` over its sport's feature state
(:class:`cluster.feature_store.FeatureStates`), which holds every stored settlement: the rows
training would compute had the event been stored. A stored event (named by ``event_key``) is
read from the store alone (its markets, selections and prices) and gets its offline features
the same way: from the state when it is still to come, from its snapshot once the state has
moved past it. Nothing here holds a sport's history: a replica's memory grows with the
participants and the bounded event cache, not with the stored events.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from betting.batch import EventBatch
from betting.features import FEATURE_COLUMNS, build_features
from betting.frames import selection_frame
from betting.schema import Event
from betting.store import load_batch, session_scope
from cluster.feature_store import EmbeddedFeatureStore, FeatureStates
from serve.errors import ResourceNotFound
from serve.requests import RawEvent

logger = logging.getLogger(__name__)

#: Columns of an event's odds snapshots kept for recommendations.
QUOTE_COLUMNS = ["market_key", "selection", "bookmaker", "kind", "captured_at", "price"]
_BATCH_FRAMES = ("events", "markets", "selections", "odds", "results")


@dataclass(frozen=True)
class QuoteTable:
    """An event's prices as arrays, one entry per quote (what picking best prices reads)."""

    market_keys: np.ndarray
    selections: np.ndarray
    bookmakers: np.ndarray
    captured_at: np.ndarray
    prices: np.ndarray

    @classmethod
    def of(cls, quotes: pd.DataFrame) -> QuoteTable:
        columns = ("market_key", "selection", "bookmaker", "captured_at", "price")
        return cls(*(quotes[c].to_numpy() for c in columns))


@dataclass(frozen=True)
class EventRows:
    """One event's selection rows with their features, and its odds snapshots."""

    event_key: str
    sport: str
    rows: pd.DataFrame
    """The selection frame rows (market then selection order) with ``FEATURE_COLUMNS``."""
    quotes: pd.DataFrame
    """Every price of the event, columns :data:`QUOTE_COLUMNS`."""
    _markets: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _quote_tables: dict[str, QuoteTable] = field(default_factory=dict, repr=False, compare=False)

    def market(self, market_key: str) -> pd.DataFrame:
        """The rows of one market, in selection order (read-only)."""
        return self._market(market_key)[0]

    def quote_table(self) -> QuoteTable:
        """The event's prices as arrays (built once per event)."""
        if "" not in self._quote_tables:
            self._quote_tables[""] = QuoteTable.of(self.quotes)
        return self._quote_tables[""]

    def model_input(self, market_key: str) -> pd.DataFrame:
        """What a model deployment needs of the market: keys and ``FEATURE_COLUMNS``."""
        return self._market(market_key)[1]

    def _market(self, market_key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        if market_key not in self._markets:
            rows = self.rows[self.rows["market_key"] == market_key]
            self._markets[market_key] = (rows, model_input(rows))
        return self._markets[market_key]


class OnlineFeatures:
    """Features of raw and stored events from one store and its feature state.

    Args:
        engine: the store (``cluster.db.get_engine``); a callable so it is opened on first use.
        states: the feature states; default: an embedded feature store over ``engine``.
        event_cache_size: stored events whose rows are kept (least recently used go first).
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        states: FeatureStates | None = None,
        *,
        event_cache_size: int = 4096,
    ) -> None:
        self._engine = engine
        self.states = states or FeatureStates(engine, EmbeddedFeatureStore())
        self._cache_size = event_cache_size
        self._events: OrderedDict[str, tuple[str, EventRows]] = OrderedDict()
        self._guard = threading.Lock()

    # --- stored events ---------------------------------------------------------------------

    def cached_event(self, event_key: str) -> EventRows | None:
        """A stored event read before, while its sport's state has not moved since."""
        with self._guard:
            found = self._events.get(event_key)
        if found is None:
            return None
        token, rows = found
        if self.states.current(rows.sport).token != token:
            return None
        with self._guard:
            if event_key in self._events:
                self._events.move_to_end(event_key)
        return rows

    def stored_event(self, event_key: str) -> EventRows:
        """The offline features and prices of a stored event.

        Raises:
            ResourceNotFound: no stored event has the key.
        """
        with session_scope(self._engine()) as session:
            sport = session.scalar(select(Event.sport).where(Event.key == event_key))
            if sport is None:
                raise ResourceNotFound("event", event_key, f"no stored event has key {event_key!r}")
            batch = load_batch(session, event_keys=[event_key])
        token = self.states.current(sport).token
        frame = selection_frame(batch)
        rows = self.states.features(sport, frame)  # market then selection order
        found = EventRows(event_key, sport, rows, batch.odds[QUOTE_COLUMNS].reset_index(drop=True))
        with self._guard:
            self._events[event_key] = (token, found)
            self._events.move_to_end(event_key)
            while len(self._events) > self._cache_size:
                self._events.popitem(last=False)
        return found

    def sport_features(self, sport: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``build_features`` over every stored event of a sport and their prices (strategy
        generation's input; read and built per call, never kept)."""
        with session_scope(self._engine()) as session:
            batch = load_batch(session, sport=sport)
        frame = selection_frame(batch)
        return (build_features(frame) if len(frame) else frame), batch.odds

    # --- raw events ------------------------------------------------------------------------

    def raw_events(self, events: list[RawEvent]) -> list[EventRows]:
        """The features of raw events, each as if it were stored beside its sport's history.

        Raw events are unsettled, so they never enter each other's history: the events of one
        sport are read in one call. Each gets a private key for the call, so the same event
        sent twice (or an event also stored under its key) is computed once per copy.
        """
        out: dict[int, EventRows] = {}
        by_sport: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            by_sport.setdefault(event.sport, []).append(i)
        for sport, indices in by_sport.items():
            private = {f"{events[i].event_key}\x1f{i}": i for i in indices}
            batch = EventBatch.concat(
                [_renamed(events[i].batch, key) for key, i in private.items()]
            )
            built = self.states.features(sport, selection_frame(batch))
            for key, rows in built.groupby("event_key", sort=False):
                i = private[str(key)]
                event = events[i]
                quotes = event.batch.odds[QUOTE_COLUMNS].reset_index(drop=True)
                rows = rows.assign(event_key=event.event_key)
                out[i] = EventRows(event.event_key, sport, rows, quotes)
        return [out[i] for i in range(len(events))]


def _renamed(batch: EventBatch, event_key: str) -> EventBatch:
    return EventBatch(*(getattr(batch, name).assign(event_key=event_key) for name in _BATCH_FRAMES))


def model_input(rows: pd.DataFrame) -> pd.DataFrame:
    """What a model deployment needs of a market's rows: its keys and ``FEATURE_COLUMNS``."""
    return rows[["event_key", "market_key", *FEATURE_COLUMNS]].reset_index(drop=True)
