"""Online features: the training feature code run over the store's history plus the request.

A raw event becomes a batch of one unsettled event (:mod:`serve.requests`); its selection frame
is appended to the selection frame of its sport's stored events and
:func:`betting.features.build_features` runs over both, exactly as training runs it over the
store. Features only look at strictly earlier settled events, so the event's rows are the ones
training would compute had the event been stored. A stored event (named by ``event_key``) gets
the rows of ``build_features`` over its sport's stored events: its offline features.

Each sport's stored events are read once and kept (:class:`SportHistory`); after ``ttl_s`` they
are re-read in a background thread while the old copy keeps answering.
"""

from __future__ import annotations

import logging
import threading
import time
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


@dataclass
class SportHistory:
    """A sport's stored events as a selection frame, read at ``loaded_at`` (monotonic)."""

    sport: str
    frame: pd.DataFrame
    odds: pd.DataFrame
    loaded_at: float
    _features: pd.DataFrame | None = field(default=None, repr=False)
    _rows_of: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _odds_of: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _events: dict[str, EventRows] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def built(self) -> bool:
        """Whether :meth:`offline_features` has been computed."""
        return self._features is not None

    def offline_features(self) -> pd.DataFrame:
        """``build_features`` over every stored event of the sport (computed once)."""
        with self._lock:
            if self._features is None:
                # copy(): one block per dtype, so each event's slices (and their concatenation
                # in a BatchPredict) are cheap.
                self._features = build_features(self.frame).copy()
                self._rows_of = self._features.groupby("event_key", sort=False).indices
                self._odds_of = self.odds.groupby("event_key", sort=False).indices
        return self._features

    def stored(self, event_key: str) -> EventRows | None:
        """The stored event's offline feature rows and prices, None when it is not here."""
        if (found := self._events.get(event_key)) is not None:
            return found
        features = self.offline_features()
        rows = self._rows_of.get(event_key)
        if rows is None:
            return None
        quotes = self.odds.iloc[self._odds_of.get(event_key, np.empty(0, dtype=np.int64))]
        found = EventRows(
            event_key, self.sport, features.iloc[rows], quotes[QUOTE_COLUMNS].reset_index(drop=True)
        )
        self._events[event_key] = found  # events are small; a sport's are kept until re-read
        return found


class OnlineFeatures:
    """Features of raw and stored events from one store, with a per-sport history cache.

    Args:
        engine: the store (``cluster.db.get_engine``); a callable so it is opened on first use.
        ttl_s: age after which a sport's history is re-read in the background.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._histories: dict[str, SportHistory] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._refreshing: set[str] = set()
        self._guard = threading.Lock()

    # --- history ---------------------------------------------------------------------------

    def _read(self, sport: str) -> SportHistory:
        started = time.perf_counter()
        with session_scope(self._engine()) as session:
            batch = load_batch(session, sport=sport)
        frame = selection_frame(batch)
        odds = batch.odds.reset_index(drop=True)
        logger.info(
            "read %s history: %d events, %d selections in %.2fs",
            sport, len(batch.events), len(frame), time.perf_counter() - started,
        )  # fmt: skip
        return SportHistory(sport, frame, odds, self._clock())

    def history(self, sport: str, *, fresh: bool = False) -> SportHistory:
        """The sport's stored events: read now when never read (or ``fresh``), else the kept
        copy, with a background re-read started when it is older than the TTL."""
        with self._guard:
            lock = self._locks.setdefault(sport, threading.Lock())
            kept = self._histories.get(sport)
        if kept is not None and not fresh:
            if self._clock() - kept.loaded_at > self._ttl_s:
                self._refresh_in_background(sport)
            return kept
        with lock:
            kept = self._histories.get(sport)
            if kept is None or fresh:
                kept = self._read(sport)
                with self._guard:
                    self._histories[sport] = kept
        return kept

    def _refresh_in_background(self, sport: str) -> None:
        with self._guard:
            if sport in self._refreshing:
                return
            self._refreshing.add(sport)

        def refresh() -> None:
            try:
                history = self._read(sport)
                history.offline_features()
                with self._guard:
                    self._histories[sport] = history
            except Exception:
                logger.exception("re-reading the %s history failed; keeping the old copy", sport)
            finally:
                with self._guard:
                    self._refreshing.discard(sport)

        threading.Thread(target=refresh, name=f"history-{sport}", daemon=True).start()

    # --- events ----------------------------------------------------------------------------

    def cached_event(self, event_key: str) -> EventRows | None:
        """A stored event already in a built history (never reads the store or builds)."""
        with self._guard:
            histories = [h for h in self._histories.values() if h.built]
        for history in histories:
            found = history.stored(event_key)
            if found is not None:
                return found
        return None

    def stored_event(self, event_key: str) -> EventRows:
        """The offline features and prices of a stored event.

        Raises:
            ResourceNotFound: no stored event has the key.
        """
        with self._guard:
            histories = list(self._histories.values())
        for history in histories:
            found = history.stored(event_key)
            if found is not None:
                return found
        with session_scope(self._engine()) as session:
            sport = session.scalar(select(Event.sport).where(Event.key == event_key))
        if sport is None:
            raise ResourceNotFound("event", event_key, f"no stored event has key {event_key!r}")
        found = self.history(sport, fresh=True).stored(event_key)
        if found is None:  # deleted between the two reads
            raise ResourceNotFound("event", event_key, f"no stored event has key {event_key!r}")
        return found

    def raw_events(self, events: list[RawEvent]) -> list[EventRows]:
        """The features of raw events, each as if it were stored beside its sport's history.

        Raw events are unsettled, so they never enter each other's history: the events of one
        sport are built in one ``build_features`` call. Each gets a private key for the call,
        so the same event sent twice (or an event also stored under its key) is computed once
        per request, untouched by the other copies (stored settled events stay in the history:
        later events of the request depend on them).
        """
        out: dict[int, EventRows] = {}
        by_sport: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            by_sport.setdefault(event.sport, []).append(i)
        for sport, indices in by_sport.items():
            history = self.history(sport)
            private = {f"{events[i].event_key}\x1f{i}": i for i in indices}
            batch = EventBatch.concat(
                [_renamed(events[i].batch, key) for key, i in private.items()]
            )
            frame = selection_frame(batch)
            # The whole history: later events never change an event's features, and a stored
            # copy of a raw event starts with it, so neither sees the other.
            past = history.frame
            combined = pd.concat([past, frame], ignore_index=True) if len(past) else frame
            built = build_features(combined).iloc[len(combined) - len(frame) :]
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
