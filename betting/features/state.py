"""Feature state: what a new event's features need of the past, kept small and updated per event.

Every participant statistic of :mod:`betting.features` is a function of a little kept state,
updated by each settled event and read to produce a later event's rows:

- per participant (:class:`ParticipantState`): Elo rating, settled events, wins, points, the
  last :data:`~betting.features.columns.FORM_LONG` points, signed streak, last settled start
  time, scored events and goals for and against;
- per ordered pair of opponents (:class:`PairState`): meetings, points and draws.

:class:`FeatureState` holds them for one history. :meth:`FeatureState.read` gives an event's
statistics before it (what :data:`STATE_STATS` lists); :meth:`FeatureState.update` applies a
settled event. Offline, :func:`betting.features.build_features` folds a whole history through
them (read every event, then update it); online the same state, folded once, is read for new
events and updated by each settlement. Its memory grows with participants and pairs, never with
events.

Time blocks: events sharing a start time never see each other. Updates of the newest start time
are kept *pending* until an event with a later start time is read or applied, so a settlement
may arrive for any event of the newest start time (in any order) and still give the same state
as the offline fold. An event older than the newest start time cannot be applied or read:
:class:`StaleState` says so, and the caller folds again from the history (an out-of-order
result changes every later rating).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from betting.errors import BetmlError
from betting.features.columns import (
    ELO_HOME_ADVANTAGE,
    ELO_INITIAL,
    FEATURE_SCHEMA_VERSION,
    FORM_LONG,
    FORM_SHORT,
    PARTICIPANT_STATS,
    REST_DAYS_CAP,
)
from betting.features.elo import match_delta, race_deltas
from betting.features.participants import HOME

#: Statistics read from the state, per (event, participant) row, in this order.
STATE_STATS = [*PARTICIPANT_STATS, "h2h_meetings", "h2h_share", "h2h_draw_share"]

_NS_PER_DAY = 86_400 * 10**9
_NAN = math.nan
_NEVER = -(2**63)
#: Reading a participant without history (Elo is filled in from the state).
_NO_HISTORY = (_NAN, _NAN, _NAN, _NAN, 0.0, REST_DAYS_CAP, 0.0, _NAN, _NAN)
_NO_MEETING = (0.0, _NAN, _NAN)


class StaleState(BetmlError):
    """An event starts before the state's newest start time: the state has moved past it."""


@dataclass(slots=True)
class ParticipantState:
    """A participant's record over its settled events (see the module docstring)."""

    elo: float = ELO_INITIAL
    settled: int = 0
    wins: int = 0
    points: float = 0.0
    recent: list[float] = field(default_factory=list)
    streak: int = 0
    last_t: int = _NEVER
    scored: int = 0
    goals_for: float = 0.0
    goals_against: float = 0.0

    def stats(self, t: int) -> tuple[float, ...]:
        """``PARTICIPANT_STATS`` of this participant for an event starting at ``t`` (ns)."""
        n = self.settled
        if n == 0:
            return (self.elo, *_NO_HISTORY)
        recent = self.recent
        short = recent[-FORM_SHORT:]
        return (
            self.elo,
            self.wins / n,
            self.points / n,
            sum(short) / len(short),
            sum(recent) / len(recent),
            float(self.streak),
            min(float(t - self.last_t) / _NS_PER_DAY, REST_DAYS_CAP),
            float(n),
            self.goals_for / self.scored if self.scored else _NAN,
            self.goals_against / self.scored if self.scored else _NAN,
        )

    def settle(self, t: int, points: float, scored: float, conceded: float) -> None:
        """Add one settled event (``points`` known; goals may be NaN)."""
        self.settled += 1
        self.wins += points == 1.0
        self.points += points
        self.recent.append(points)
        if len(self.recent) > FORM_LONG:
            del self.recent[0]
        won = points == 1.0
        if won:
            self.streak = self.streak + 1 if self.streak > 0 else 1
        else:
            self.streak = self.streak - 1 if self.streak < 0 else -1
        self.last_t = t
        if not (math.isnan(scored) or math.isnan(conceded)):
            self.scored += 1
            self.goals_for += scored
            self.goals_against += conceded


@dataclass(slots=True)
class PairState:
    """One participant's record in its settled meetings with one opponent."""

    meetings: int = 0
    points: float = 0.0
    draws: int = 0

    def stats(self) -> tuple[float, float, float]:
        """``h2h_meetings``, ``h2h_share`` and ``h2h_draw_share``."""
        if self.meetings == 0:
            return _NO_MEETING
        return (float(self.meetings), self.points / self.meetings, self.draws / self.meetings)


class EventSides(NamedTuple):
    """One event's participant rows, as the state reads and updates them.

    ``names`` are ordered home, away (two-participant events) or by name (races);
    ``opponents`` name each row's opponent in two-participant events (None otherwise);
    ``points`` are NaN while unsettled; ``scored``/``conceded`` are goals (NaN when unknown).
    """

    key: str
    t: int
    names: tuple[str, ...]
    roles: tuple[int, ...]
    opponents: tuple[str | None, ...]
    points: tuple[float, ...]
    scored: tuple[float, ...]
    conceded: tuple[float, ...]
    settled: bool
    """Whether any row has its points (only those rows count as history)."""

    @classmethod
    def of(
        cls,
        key: str,
        t: int,
        names: tuple[str, ...],
        roles: tuple[int, ...],
        opponents: tuple[str | None, ...],
        points: tuple[float, ...],
        scored: tuple[float, ...],
        conceded: tuple[float, ...],
    ) -> EventSides:
        """An event, ``settled`` worked out from ``points``."""
        settled = any(p == p for p in points)  # NaN != NaN
        return cls(key, t, names, roles, opponents, points, scored, conceded, settled)


@dataclass(slots=True)
class _Pending:
    """A settled event of the newest start time, with its Elo changes worked out."""

    event: EventSides
    deltas: list[tuple[str, float]]


class FeatureState:
    """The kept state of one history: participants, pairs and the newest start time's results.

    Args:
        schema_version: the feature schema the state was folded with (the code's by default).
    """

    def __init__(self, schema_version: str = FEATURE_SCHEMA_VERSION) -> None:
        self.schema_version = schema_version
        self.participants: dict[str, ParticipantState] = {}
        self.pairs: dict[tuple[str, str], PairState] = {}
        self.block_t: int = _NEVER
        """Start time (ns) of the newest applied events; their updates are in ``pending``."""
        self.pending: list[_Pending] = []
        self._pending_keys: set[str] = set()
        self.applied = 0
        """Settled events applied so far."""
        self.last_key = ""
        """Key of the latest applied event (by start time, then key)."""

    # --- reading ---------------------------------------------------------------------------

    def read(self, event: EventSides) -> list[tuple[float, ...]]:
        """``STATE_STATS`` of each row of ``event``, from the events before its start time.

        Raises:
            StaleState: ``event`` starts before the newest applied start time.
        """
        self._advance(event)
        out = []
        for name, opponent in zip(event.names, event.opponents, strict=True):
            kept = self.participants.get(name)
            own = kept.stats(event.t) if kept is not None else (ELO_INITIAL, *_NO_HISTORY)
            pair = self.pairs.get((name, opponent)) if opponent is not None else None
            out.append(own + (pair.stats() if pair is not None else _NO_MEETING))
        return out

    # --- updating --------------------------------------------------------------------------

    def update(self, event: EventSides) -> None:
        """Apply ``event``'s result (nothing happens while it is unsettled).

        Raises:
            StaleState: ``event`` starts before the newest applied start time.
        """
        if not event.settled:
            return
        self._advance(event)
        if event.key in self._pending_keys:
            return  # already applied (a settlement seen twice)
        self.pending.append(_Pending(event, self._elo_deltas(event)))
        self._pending_keys.add(event.key)
        self.block_t = event.t
        self.applied += 1
        if event.key > self.last_key or len(self.pending) == 1:
            self.last_key = event.key

    def flush(self) -> None:
        """Apply the pending updates of the newest start time (event-key order, as offline)."""
        if not self.pending:
            return
        for item in sorted(self.pending, key=lambda p: p.event.key):
            event = item.event
            for i, name in enumerate(event.names):
                points = event.points[i]
                if math.isnan(points):
                    continue
                self._participant(name).settle(event.t, points, event.scored[i], event.conceded[i])
                opponent = event.opponents[i]
                if opponent is not None:
                    pair = self.pairs.get((name, opponent))
                    if pair is None:
                        pair = self.pairs[(name, opponent)] = PairState()
                    pair.meetings += 1
                    pair.points += points
                    pair.draws += points == 0.5
            for name, delta in item.deltas:
                self._participant(name).elo += delta
        self.pending = []
        self._pending_keys = set()

    def _advance(self, event: EventSides) -> None:
        if event.t < self.block_t:
            raise StaleState(
                f"event {event.key!r} starts at {_iso(event.t)}, before the state's newest "
                f"start time {_iso(self.block_t)} (event {self.last_key!r})"
            )
        if event.t > self.block_t:
            self.flush()

    def _participant(self, name: str) -> ParticipantState:
        kept = self.participants.get(name)
        if kept is None:
            kept = self.participants[name] = ParticipantState()
        return kept

    def _rating(self, name: str) -> float:
        kept = self.participants.get(name)
        return kept.elo if kept is not None else ELO_INITIAL

    def _elo_deltas(self, event: EventSides) -> list[tuple[str, float]]:
        """Rating changes of a settled event, from the ratings before its start time."""
        names, points = event.names, event.points
        if len(names) == 2:  # Elo with a draw worth half and the home advantage
            if math.isnan(points[0]) or math.isnan(points[1]):
                return []
            advantage = _bonus(event.roles[0]) - _bonus(event.roles[1])
            delta = match_delta(
                points[0], self._rating(names[0]), self._rating(names[1]), advantage
            )
            return [(names[0], delta), (names[1], -delta)]
        ratings = [self._rating(n) for n in names]
        return [(names[i], delta) for i, delta in race_deltas(ratings, list(points))]

    # --- keeping ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole state as bytes (:meth:`from_bytes` reads them back)."""
        return _pack_state(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureState:
        return _unpack_state(data)

    def describe(self) -> dict[str, object]:
        """Sizes and position of the state, for health checks and logs."""
        return {
            "schema_version": self.schema_version,
            "applied_events": self.applied,
            "last_event_key": self.last_key,
            "last_starts_at": (
                pd.Timestamp(self.block_t, tz="UTC").to_pydatetime()
                if self.block_t != _NEVER
                else None
            ),
            "participants": len(self.participants),
            "pairs": len(self.pairs),
        }


def _bonus(role: int) -> float:
    return ELO_HOME_ADVANTAGE if role == HOME else 0.0


def _iso(t: int) -> str:
    if t == _NEVER:
        return "the beginning"
    return pd.Timestamp(t, tz="UTC").isoformat()


# --- the participant table as events ---------------------------------------------------------


def event_sides(
    table: pd.DataFrame, names: np.ndarray, keys: Sequence[str]
) -> Iterator[EventSides]:
    """The events of a participant table (sorted by event), in table order.

    Args:
        table: as from :func:`betting.features.participants.participant_table`.
        names: participant names by code (``Encoded.names``).
        keys: event keys by event position (``Encoded.events["event_key"]``).
    """
    n = len(table)
    if n == 0:
        return
    ev = table["ev"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]]).tolist()
    ends = [*starts[1:], n]
    name_list = np.asarray(names, dtype=object)
    code = name_list[table["code"].to_numpy()].tolist()
    opponent_code = table["opponent"].to_numpy()
    opponent = np.where(opponent_code >= 0, name_list[np.maximum(opponent_code, 0)], None)
    opponent = opponent.tolist()
    role = table["role"].to_numpy().tolist()
    t = table["t"].to_numpy().tolist()
    points = table["points"].to_numpy(float).tolist()
    scored = table["scored"].to_numpy(float).tolist()
    conceded = table["conceded"].to_numpy(float).tolist()
    settled = np.logical_or.reduceat(~np.isnan(table["points"].to_numpy(float)), starts)
    ev_list = ev.tolist()
    for a, b, is_settled in zip(starts, ends, settled.tolist(), strict=True):
        yield EventSides(
            str(keys[ev_list[a]]),
            t[a],
            tuple(code[a:b]),
            tuple(role[a:b]),
            tuple(opponent[a:b]),
            tuple(points[a:b]),
            tuple(scored[a:b]),
            tuple(conceded[a:b]),
            is_settled,
        )


def fold(
    events: Iterator[EventSides] | Sequence[EventSides], state: FeatureState
) -> list[tuple[EventSides, list[tuple[float, ...]]]]:
    """Read then update each event in start order: each event's statistics before it.

    This is the one way history enters the features, offline (a whole store, from an empty
    state) and online (new events, onto the kept state).

    Raises:
        StaleState: an event starts before the state's newest start time.
    """
    out = []
    for event in events:
        out.append((event, state.read(event)))
        state.update(event)
    return out


def stats_frame(
    read: list[tuple[EventSides, list[tuple[float, ...]]]], index: pd.Index
) -> pd.DataFrame:
    """The statistics of :func:`fold` (or of reads) as a frame of ``STATE_STATS``."""
    rows = [row for _, rows in read for row in rows]
    values = np.array(rows, dtype=float).reshape(len(rows), len(STATE_STATS))
    return pd.DataFrame(values, index=index, columns=STATE_STATS)


# --- bytes -----------------------------------------------------------------------------------

_MAGIC = b"BFS1"
_PARTICIPANT = struct.Struct("<dqqdqqqddB")
_PAIR = struct.Struct("<qdq")


def _put_str(parts: list[bytes], text: str) -> None:
    raw = text.encode()
    parts.append(struct.pack("<I", len(raw)))
    parts.append(raw)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def take(self, fmt: struct.Struct) -> tuple[object, ...]:
        values = fmt.unpack_from(self.data, self.at)
        self.at += fmt.size
        return values

    def str(self) -> str:
        (n,) = struct.unpack_from("<I", self.data, self.at)
        self.at += 4
        text = bytes(self.data[self.at : self.at + n]).decode()
        self.at += n
        return text

    def floats(self, n: int) -> list[float]:
        values = list(struct.unpack_from(f"<{n}d", self.data, self.at))
        self.at += 8 * n
        return values


def _pack_event(parts: list[bytes], event: EventSides) -> None:
    _put_str(parts, event.key)
    parts.append(struct.pack("<qI", event.t, len(event.names)))
    for i, name in enumerate(event.names):
        _put_str(parts, name)
        opponent = event.opponents[i]
        _put_str(parts, "" if opponent is None else opponent)
        parts.append(
            struct.pack(
                "<B?ddd",
                event.roles[i],
                opponent is not None,
                event.points[i],
                event.scored[i],
                event.conceded[i],
            )
        )


def _unpack_event(reader: _Reader) -> EventSides:
    key = reader.str()
    t, size = reader.take(struct.Struct("<qI"))
    names, roles, opponents, points, scored, conceded = [], [], [], [], [], []
    row = struct.Struct("<B?ddd")
    for _ in range(int(size)):  # type: ignore[call-overload]
        names.append(reader.str())
        opponent = reader.str()
        role, has_opponent, p, s, c = reader.take(row)
        roles.append(role)
        opponents.append(opponent if has_opponent else None)
        points.append(p)
        scored.append(s)
        conceded.append(c)
    return EventSides.of(
        key,
        int(t),
        tuple(names),
        tuple(roles),
        tuple(opponents),  # type: ignore[arg-type]
        tuple(points),
        tuple(scored),
        tuple(conceded),
    )  # type: ignore[arg-type]


def _pack_state(state: FeatureState) -> bytes:
    parts: list[bytes] = [_MAGIC]
    _put_str(parts, state.schema_version)
    _put_str(parts, state.last_key)
    parts.append(
        struct.pack(
            "<qqII", state.block_t, state.applied, len(state.participants), len(state.pairs)
        )
    )
    for name, p in state.participants.items():
        _put_str(parts, name)
        parts.append(
            _PARTICIPANT.pack(
                p.elo,
                p.settled,
                p.wins,
                p.points,
                p.streak,
                p.last_t,
                p.scored,
                p.goals_for,
                p.goals_against,
                len(p.recent),
            )
        )
        parts.append(struct.pack(f"<{len(p.recent)}d", *p.recent))
    for (a, b), pair in state.pairs.items():
        _put_str(parts, a)
        _put_str(parts, b)
        parts.append(_PAIR.pack(pair.meetings, pair.points, pair.draws))
    parts.append(struct.pack("<I", len(state.pending)))
    for item in state.pending:
        _pack_event(parts, item.event)
        parts.append(struct.pack("<I", len(item.deltas)))
        for name, delta in item.deltas:
            _put_str(parts, name)
            parts.append(struct.pack("<d", delta))
    return b"".join(parts)


def _unpack_state(data: bytes) -> FeatureState:
    if data[:4] != _MAGIC:
        raise BetmlError("not a betml feature state (bad magic bytes)")
    reader = _Reader(data)
    reader.at = 4
    state = FeatureState(reader.str())
    state.last_key = reader.str()
    block_t, applied, n_participants, n_pairs = reader.take(struct.Struct("<qqII"))
    state.block_t, state.applied = int(block_t), int(applied)  # type: ignore[call-overload]
    for _ in range(int(n_participants)):  # type: ignore[call-overload]
        name = reader.str()
        elo, settled, wins, points, streak, last_t, scored, gf, ga, n = reader.take(_PARTICIPANT)
        state.participants[name] = ParticipantState(
            elo,
            settled,
            wins,
            points,
            reader.floats(int(n)),
            streak,
            last_t,
            scored,
            gf,
            ga,  # type: ignore[arg-type, call-overload]
        )
    for _ in range(int(n_pairs)):  # type: ignore[call-overload]
        a, b = reader.str(), reader.str()
        state.pairs[(a, b)] = PairState(*reader.take(_PAIR))  # type: ignore[arg-type]
    (n_pending,) = reader.take(struct.Struct("<I"))
    for _ in range(int(n_pending)):  # type: ignore[call-overload]
        event = _unpack_event(reader)
        (n_deltas,) = reader.take(struct.Struct("<I"))
        deltas = []
        for _ in range(int(n_deltas)):  # type: ignore[call-overload]
            name = reader.str()
            deltas.append((name, reader.floats(1)[0]))
        state.pending.append(_Pending(event, deltas))
        state._pending_keys.add(event.key)
    return state
