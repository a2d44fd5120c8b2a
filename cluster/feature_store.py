"""The online feature store: each sport's feature state and event snapshots, kept current.

A :class:`FeatureStore` keeps, per sport, the :class:`~betting.features.state.FeatureState`
folded over the store's settled events, the id of the last settlement it has seen (the
*watermark*) and the :class:`~betting.features.snapshots.Snapshot` of every event it folded.
Two backends share the small interface:

- :class:`EmbeddedFeatureStore` (the default): in the process; rebuilt from the store when the
  process first needs a sport, then updated incrementally;
- :class:`RedisFeatureStore` (``BETML_FEATURE_STORE_URL=redis://...``): shared by every ingress
  replica and the CLI, and kept across restarts; each process keeps a decoded copy of a sport's
  state and re-reads it only when its change token moved.

:class:`FeatureStates` keeps a backend in step with the store: before every read it compares the
store's newest settlement id with the watermark (one indexed query) and folds the new
settlements onto the state, so a prediction made right after a result is stored sees it. A
settlement older than the state's newest start time changes every later rating: the sport is
folded again from the store. A state of another feature schema version is never used: it is
rebuilt with the code's.
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from betting.errors import ConfigError
from betting.features import FEATURE_SCHEMA_VERSION
from betting.features.build import read_features
from betting.features.snapshots import Snapshot, SnapshotMismatch, fold_history
from betting.features.state import EventSides, FeatureState, StaleState
from betting.frames import selection_frame
from betting.schema import Event
from betting.store import latest_settlement, load_batch, session_scope, settled_since

logger = logging.getLogger(__name__)

#: Events read from the store per round trip while folding a sport's history.
FOLD_WINDOW_EVENTS = 10_000
_WATERMARK = struct.Struct("<q")


@dataclass
class Kept:
    """A sport's state and the last settlement id folded into it."""

    state: FeatureState
    watermark: int

    def to_bytes(self) -> bytes:
        return _WATERMARK.pack(self.watermark) + self.state.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Kept:
        (watermark,) = _WATERMARK.unpack_from(data)
        return cls(FeatureState.from_bytes(data[_WATERMARK.size :]), int(watermark))


class FeatureStore(ABC):
    """Where the kept states and snapshots live."""

    kind: str = ""

    @abstractmethod
    def token(self, sport: str) -> str | None:
        """Changes whenever :meth:`save` runs for ``sport``; None when nothing is kept."""

    @abstractmethod
    def load(self, sport: str) -> tuple[str, Kept] | None:
        """The kept state with its token, None when nothing is kept."""

    @abstractmethod
    def save(self, sport: str, kept: Kept, snapshots: dict[str, Snapshot], *, replace: bool) -> str:
        """Store ``kept`` and add ``snapshots`` (``replace``: drop the old ones); the new token."""

    @abstractmethod
    def snapshots(self, sport: str, keys: list[str]) -> dict[str, Snapshot]:
        """The kept snapshots of those event keys (missing keys are left out)."""

    @abstractmethod
    def lock(self, sport: str) -> AbstractContextManager[None]:
        """Exclusive among every process sharing the store: held while folding."""


class EmbeddedFeatureStore(FeatureStore):
    """States and snapshots in this process (about 0.3 kB per folded event for snapshots)."""

    kind = "embedded"

    def __init__(self) -> None:
        self._kept: dict[str, tuple[str, Kept]] = {}
        self._snapshots: dict[str, dict[str, bytes]] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._saves = 0

    def token(self, sport: str) -> str | None:
        found = self._kept.get(sport)
        return found[0] if found else None

    def load(self, sport: str) -> tuple[str, Kept] | None:
        return self._kept.get(sport)

    def save(self, sport: str, kept: Kept, snapshots: dict[str, Snapshot], *, replace: bool) -> str:
        packed = {key: snap.to_bytes() for key, snap in snapshots.items()}
        with self._guard:
            self._saves += 1
            token = str(self._saves)
            if replace or sport not in self._snapshots:
                self._snapshots[sport] = packed
            else:
                self._snapshots[sport].update(packed)
            self._kept[sport] = (token, kept)
        return token

    def snapshots(self, sport: str, keys: list[str]) -> dict[str, Snapshot]:
        kept = self._snapshots.get(sport, {})
        return {k: Snapshot.from_bytes(kept[k]) for k in keys if k in kept}

    def lock(self, sport: str) -> AbstractContextManager[None]:
        with self._guard:
            return self._locks.setdefault(sport, threading.RLock())  # type: ignore[return-value]


class RedisFeatureStore(FeatureStore):
    """States and snapshots in Redis, under ``<prefix>:<schema version>:<sport>:...``.

    Args:
        url: a ``redis://`` or ``rediss://`` URL.
        prefix: the key prefix (one per deployment sharing a Redis).
        lock_timeout_s: how long a fold may hold a sport's lock before Redis frees it.
    """

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "betml:features", lock_timeout_s: float = 600):
        import redis

        try:
            self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        except ValueError as e:
            raise ConfigError(f"BETML_FEATURE_STORE_URL {url!r} is not a Redis URL: {e}") from e
        self.url = url
        self.prefix = prefix
        self.lock_timeout_s = lock_timeout_s

    def _key(self, sport: str, part: str) -> str:
        return f"{self.prefix}:{FEATURE_SCHEMA_VERSION}:{sport}:{part}"

    def token(self, sport: str) -> str | None:
        value = self.client.get(self._key(sport, "token"))
        return value.decode() if value is not None else None

    def load(self, sport: str) -> tuple[str, Kept] | None:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self._key(sport, "token"))
        pipe.get(self._key(sport, "state"))
        token, data = pipe.execute()
        if token is None or data is None:
            return None
        return token.decode(), Kept.from_bytes(data)

    def save(self, sport: str, kept: Kept, snapshots: dict[str, Snapshot], *, replace: bool) -> str:
        pipe = self.client.pipeline(transaction=True)
        snap_key = self._key(sport, "snapshots")
        if replace:
            pipe.delete(snap_key)
        items = [(key, snap.to_bytes()) for key, snap in snapshots.items()]
        for start in range(0, len(items), 5000):
            pipe.hset(snap_key, mapping=dict(items[start : start + 5000]))
        pipe.set(self._key(sport, "state"), kept.to_bytes())
        pipe.incr(self._key(sport, "token"))
        token = pipe.execute()[-1]
        return str(token)

    def snapshots(self, sport: str, keys: list[str]) -> dict[str, Snapshot]:
        if not keys:
            return {}
        values = self.client.hmget(self._key(sport, "snapshots"), keys)
        return {k: Snapshot.from_bytes(v) for k, v in zip(keys, values, strict=True) if v}

    @contextmanager
    def lock(self, sport: str) -> Iterator[None]:
        with self.client.lock(
            self._key(sport, "lock"),
            timeout=self.lock_timeout_s,
            blocking_timeout=self.lock_timeout_s,
        ):
            yield


def open_feature_store(url: str | None) -> FeatureStore:
    """The backend named by ``BETML_FEATURE_STORE_URL``: embedded when unset or ``embedded``.

    Raises:
        ConfigError: a URL of another kind.
    """
    if not url or url == "embedded":
        return EmbeddedFeatureStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisFeatureStore(url)
    raise ConfigError(f"BETML_FEATURE_STORE_URL {url!r}: expected 'embedded' or a redis:// URL")


@dataclass
class _Local:
    """This process's decoded copy of a sport's state, with the token it was read at."""

    token: str
    kept: Kept


class FeatureStates:
    """A feature store kept in step with the event store.

    Args:
        engine: the event store (a callable, opened on first use).
        store: where states and snapshots are kept.
    """

    def __init__(self, engine: Callable[[], Engine], store: FeatureStore) -> None:
        self._engine = engine
        self.store = store
        self._local: dict[str, _Local] = {}
        self._guard = threading.Lock()
        self._mutexes: dict[str, threading.RLock] = {}
        self.rebuilds = 0
        """Whole-history folds this process ran (each sport's first one included)."""

    def _mutex(self, sport: str) -> threading.RLock:
        """Held while this process folds or reads a sport's state (reads may flush it)."""
        with self._guard:
            return self._mutexes.setdefault(sport, threading.RLock())

    # --- keeping in step -------------------------------------------------------------------

    def current(self, sport: str) -> _Local:
        """The sport's state with every stored settlement applied."""
        with session_scope(self._engine()) as session:
            latest = latest_settlement(session)
        local = self._local.get(sport)
        if local is not None and local.kept.watermark >= latest:
            token = self.store.token(sport)
            if token == local.token:
                return local
        found = self.store.load(sport)
        if found is not None and found[1].state.schema_version == FEATURE_SCHEMA_VERSION:
            local = _Local(*found)
            with self._guard:
                self._local[sport] = local
            if local.kept.watermark >= latest:
                return local
        return self.sync(sport)

    def sync(self, sport: str) -> _Local:
        """Fold the settlements the state has not seen (the whole history when it has none)."""
        with self._mutex(sport), self.store.lock(sport):
            found = self.store.load(sport)
            if found is None or found[1].state.schema_version != FEATURE_SCHEMA_VERSION:
                return self._rebuild(sport)
            token, kept = found
            with session_scope(self._engine()) as session:
                latest = latest_settlement(session)
                keys, top = settled_since(session, kept.watermark, sport=sport)
                window = self._settled_window(session, sport, keys, kept.state) if keys else None
            if window is not None:
                try:
                    snapshots = fold_history(window, kept.state)
                except StaleState as e:
                    logger.info("%s: %s; folding the history again", sport, e)
                    return self._rebuild(sport)
            else:
                snapshots = {}
            kept.watermark = max(latest, top)
            token = self.store.save(sport, kept, snapshots, replace=False)
            logger.info(
                "%s feature state: %d settlement(s) applied, %d event(s) folded",
                sport, len(keys), len(snapshots),
            )  # fmt: skip
            return self._keep(sport, token, kept)

    def rebuild(self, sport: str) -> _Local:
        """Fold the sport's whole stored history into a new state."""
        with self._mutex(sport), self.store.lock(sport):
            return self._rebuild(sport)

    def _rebuild(self, sport: str) -> _Local:
        """:meth:`rebuild` with the sport's locks held (the Redis lock is not re-entrant)."""
        started = time.perf_counter()
        state = FeatureState()
        snapshots: dict[str, Snapshot] = {}
        with session_scope(self._engine()) as session:
            latest = latest_settlement(session)  # before reading: nothing is missed
            for start, end in _windows(session, sport, FOLD_WINDOW_EVENTS):
                batch = load_batch(session, sport=sport, start=start, end=end, with_odds=False)
                snapshots.update(fold_history(selection_frame(batch), state))
        kept = Kept(state, latest)
        token = self.store.save(sport, kept, snapshots, replace=True)
        self.rebuilds += 1
        logger.info(
            "%s feature state folded from %d event(s) in %.2fs: %s",
            sport, len(snapshots), time.perf_counter() - started, state.describe(),
        )  # fmt: skip
        return self._keep(sport, token, kept)

    def _keep(self, sport: str, token: str, kept: Kept) -> _Local:
        local = _Local(token, kept)
        with self._guard:
            self._local[sport] = local
        return local

    def _settled_window(
        self, session: Any, sport: str, keys: list[str], state: FeatureState
    ) -> pd.DataFrame:
        """The newly settled events, with the unsettled ones stored between them (their
        snapshots are taken at the right moment); stale ones make the fold raise."""
        settled = load_batch(session, event_keys=keys, with_odds=False)
        starts = pd.to_datetime(settled.events["starts_at"], utc=True)
        if state.block_t > -(2**63) and len(starts):
            first = pd.Timestamp(state.block_t, tz="UTC").to_pydatetime()
            between = load_batch(
                session, sport=sport, start=first, end=_after(starts.max()), with_odds=False
            )
            unsettled = between.events.loc[
                between.events["home_score"].isna()
                & ~between.events["event_key"].isin(between.results["event_key"]),
                "event_key",
            ]
            extra = [k for k in unsettled if k not in set(keys)]
            if extra:
                from betting.batch import EventBatch

                settled = EventBatch.concat(
                    [settled, load_batch(session, event_keys=extra, with_odds=False)]
                )
        return selection_frame(settled)

    # --- reading ---------------------------------------------------------------------------

    def features(self, sport: str, frame: pd.DataFrame) -> pd.DataFrame:
        """``build_features`` rows of events of ``sport`` as if stored beside its history.

        Events after the state's newest start time (upcoming matches) are read from the state;
        earlier ones from their snapshot (a stored event, or a raw copy of one under its key;
        ``event_key`` may carry a ``\\x1f``-suffix that is ignored here). An earlier event
        without a matching snapshot is computed from the stored history before it.
        """
        local = self.current(sport)
        state = local.kept.state
        frame_keys = frame["event_key"].drop_duplicates().tolist()
        wanted = {k: k.split("\x1f", 1)[0] for k in frame_keys}
        earlier = frame.groupby("event_key", sort=False)["starts_at"].first()
        t_ns = pd.to_datetime(earlier, utc=True).dt.as_unit("ns").astype("int64")
        past = [wanted[k] for k, t in t_ns.items() if t < state.block_t]
        snapshots = self.store.snapshots(sport, sorted(set(past))) if past else {}

        def read(event: EventSides) -> list[tuple[float, ...]]:
            if event.t >= state.block_t:
                return state.read(event)
            snapshot = snapshots.get(wanted.get(event.key, event.key))
            if snapshot is None:
                raise StaleState(f"event {event.key!r}: no snapshot before the state's start")
            return snapshot.read(event)

        try:
            with self._mutex(sport):  # reading may apply the newest start time's pending results
                return read_features(frame, read)
        except (StaleState, SnapshotMismatch) as e:
            logger.info("%s: %s; computing from the stored history", sport, e)
            return self._from_history(sport, frame)

    def _from_history(self, sport: str, frame: pd.DataFrame) -> pd.DataFrame:
        """The slow path: the frame folded after the sport's stored events before it."""
        latest = pd.to_datetime(frame["starts_at"], utc=True).max()
        with session_scope(self._engine()) as session:
            batch = load_batch(session, sport=sport, end=_after(latest), with_odds=False)
        history = selection_frame(batch)
        history = history[~history["event_key"].isin(frame["event_key"])]
        from betting.features import build_features

        combined = pd.concat([history, frame], ignore_index=True) if len(history) else frame
        built = build_features(combined).iloc[len(combined) - len(frame) :]
        return built.set_axis(frame.index)

    def snapshot_of(self, sport: str, event_key: str) -> Snapshot | None:
        """The kept snapshot of a stored event, if any."""
        return self.store.snapshots(sport, [event_key]).get(event_key)

    # --- reporting -------------------------------------------------------------------------

    def describe(self) -> list[dict[str, object]]:
        """Per sport this process has read: schema version, position, sizes and watermark."""
        with self._guard:
            items = sorted(self._local.items())
        return [
            {"sport": sport, "backend": self.store.kind, "watermark": local.kept.watermark,
             "token": local.token, "version": self.version(sport),
             **local.kept.state.describe()}
            for sport, local in items
        ]  # fmt: skip

    def version(self, sport: str) -> str:
        """The state version of a sport: schema version, applied events and latest event."""
        local = self._local.get(sport)
        if local is None:
            return f"{FEATURE_SCHEMA_VERSION}:{sport}:unread"
        state = local.kept.state
        return f"{state.schema_version}:{sport}:{state.applied}:{state.last_key}"


def update_shared_states(
    engine: Callable[[], Engine], url: str | None, sports: list[str]
) -> list[dict[str, object]]:
    """After an import: fold the new settlements into a shared (Redis) feature store now.

    An embedded store lives in the serving processes, which fold the new settlements on their
    next request; nothing is done for it here.

    Returns:
        :meth:`FeatureStates.describe` of the updated sports (empty for an embedded store).
    """
    store = open_feature_store(url)
    if isinstance(store, EmbeddedFeatureStore):
        return []
    states = FeatureStates(engine, store)
    for sport in sports:
        states.current(sport)
    return states.describe()


def _after(moment: pd.Timestamp | datetime) -> datetime:
    return (pd.Timestamp(moment) + pd.Timedelta(1, "us")).to_pydatetime()


def _windows(session: Any, sport: str, size: int) -> list[tuple[datetime | None, datetime | None]]:
    """Start-time ranges ``[start, end)`` of about ``size`` events each.

    Bounds are start times, so the events of one start time always share a range.
    """
    times = session.scalars(
        select(Event.starts_at).where(Event.sport == sport).order_by(Event.starts_at)
    ).all()
    if not times:
        return []
    cuts = sorted({times[i] for i in range(size, len(times), size)})
    bounds: list[datetime | None] = [None, *cuts, None]
    return list(itertools.pairwise(bounds))
