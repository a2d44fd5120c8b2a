"""Event snapshots: what the feature state said of an event's participants just before it.

The online state moves on with every settlement, so the features of an event it has passed
(a stored, settled match) can no longer be read from it. While folding, the state's reading of
each event is kept as a :class:`Snapshot` (about 0.3 kB per event): a stored event's offline
features are its own rows plus its snapshot, with no history to re-read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pandas as pd

from betting.errors import BetmlError
from betting.features.build import frame_events
from betting.features.state import STATE_STATS, EventSides, FeatureState, fold

_HEAD = struct.Struct("<qI")
_N_STATS = len(STATE_STATS)


class SnapshotMismatch(BetmlError):
    """A snapshot does not belong to the event asked about (other participants or time)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One event's ``STATE_STATS`` rows before it, with the participants and start they are of."""

    t: int
    names: tuple[str, ...]
    stats: tuple[tuple[float, ...], ...]

    def to_bytes(self) -> bytes:
        names = "\x1f".join(self.names).encode()
        flat = [v for row in self.stats for v in row]
        return _HEAD.pack(self.t, len(names)) + names + struct.pack(f"<{len(flat)}d", *flat)

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        t, size = _HEAD.unpack_from(data)
        names = tuple(data[_HEAD.size : _HEAD.size + size].decode().split("\x1f"))
        flat = struct.unpack_from(f"<{len(names) * _N_STATS}d", data, _HEAD.size + size)
        stats = tuple(flat[i : i + _N_STATS] for i in range(0, len(flat), _N_STATS))
        return cls(int(t), names, stats)

    def read(self, event: EventSides) -> list[tuple[float, ...]]:
        """The snapshot's rows for ``event`` (a ``StatsReader``).

        Raises:
            SnapshotMismatch: ``event`` has other participants or another start time.
        """
        if event.t != self.t or event.names != self.names:
            raise SnapshotMismatch(
                f"event {event.key!r}: the kept snapshot is of {list(self.names)} at {self.t}, "
                f"the event has {list(event.names)} at {event.t}"
            )
        return list(self.stats)


def fold_history(frame: pd.DataFrame, state: FeatureState) -> dict[str, Snapshot]:
    """Fold the events of a selection frame onto ``state`` (in place); each event's snapshot.

    Raises:
        InvalidInput: the frame lacks a column or an event has no start time.
        StaleState: an event starts before the state's newest start time.
    """
    if frame.empty:
        return {}
    _, _, events = frame_events(frame)
    return {
        event.key: Snapshot(event.t, event.names, tuple(rows))
        for event, rows in fold(events, state)
    }
