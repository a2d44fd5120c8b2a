"""Logging every answered market to the ``predictions`` table, off the answer's path.

:meth:`PredictionLog.record` turns a GetPrediction answer into one row per selection (model
name and version, event key, market, selection, probability, the price and bookmaker it was
judged at, the request id), gives it a ``prediction_id`` shared by those rows, and puts the rows
in a buffer; it never waits for the store. A single writer task flushes the buffer every
``flush_interval_s`` or as soon as ``flush_rows`` rows wait, writing in a worker thread, and links
each row to its stored selection when the event is in the store. The buffer is bounded: while
the store is down rows wait up to ``max_buffered_rows``; beyond that new rows are dropped,
counted and warned about, so a dead store never grows a replica's memory. :meth:`close` flushes
what is left (the ingress calls it when its replica shuts down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import Engine, insert, select

from betting.schema import Event, Market, Prediction, Selection
from betting.store import session_scope
from serve.proto.betml.v1 import ml_service_pb2 as pb

logger = logging.getLogger(__name__)

_KEY_CHUNK = 500


def prediction_rows(
    answer: pb.GetPredictionResponse, prediction_id: str, request_id: str = ""
) -> list[dict[str, Any]]:
    """The ``predictions`` rows of one answered market, one per selection."""
    created_at = answer.predicted_at.ToDatetime(tzinfo=UTC)
    return [
        {
            "prediction_id": prediction_id,
            "created_at": created_at,
            "request_id": request_id[:64] or None,
            "model_name": answer.model.name,
            "model_version": answer.model.version,
            "event_ref": answer.event_key,
            "market": answer.market_key,
            "selection": s.selection,
            "probability": s.probability,
            "odds": s.odds or None,
            "bookmaker": s.bookmaker or None,
        }
        for s in answer.selections
    ]


def write_predictions(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in one transaction, with ``selection_id`` set where the event is stored."""
    keys = sorted({r["event_ref"] for r in rows})
    with session_scope(engine) as session:
        ids: dict[tuple[str, str, str], int] = {}
        for start in range(0, len(keys), _KEY_CHUNK):
            found = session.execute(
                select(Event.key, Market.key, Selection.name, Selection.id)
                .join(Market, Market.event_id == Event.id)
                .join(Selection, Selection.market_id == Market.id)
                .where(Event.key.in_(keys[start : start + _KEY_CHUNK]))
            )
            ids.update({(e, m, s): i for e, m, s, i in found})
        linked = [
            r | {"selection_id": ids.get((r["event_ref"], r["market"], r["selection"]))}
            for r in rows
        ]
        session.execute(insert(Prediction), linked)


class PredictionLog:
    """A bounded buffer of prediction rows and the single task that writes them.

    Args:
        engine: gives the store's engine (called in the writer's thread, so opening and
            migrating it never blocks an answer).
        flush_interval_s: longest time a row waits before a write is tried.
        flush_rows: rows that start a write at once; also the most rows of one insert.
        max_buffered_rows: most rows kept waiting; rows beyond it are dropped.
        on_drop: called with the number of rows dropped (e.g. a metrics counter).
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        flush_interval_s: float = 1.0,
        flush_rows: int = 500,
        max_buffered_rows: int = 50_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.max_buffered_rows = max_buffered_rows
        self._on_drop = on_drop
        self._buffer: deque[dict[str, Any]] = deque()
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._failing = False
        self._closing = False
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._buffer)

    def record(self, answer: pb.GetPredictionResponse, request_id: str = "") -> str:
        """Queue an answered market's rows; its ``prediction_id``, or "" when they were dropped.

        Must be called on the event loop the writer runs on (it starts the writer on first use).
        """
        prediction_id = uuid.uuid4().hex
        rows = prediction_rows(answer, prediction_id, request_id)
        if len(self._buffer) + len(rows) > self.max_buffered_rows:
            self._drop(len(rows), "the buffer is full")
            return ""
        self._buffer.extend(rows)
        self._start()
        if len(self._buffer) >= self.flush_rows and self._wake is not None:
            self._wake.set()
        return prediction_id

    def _start(self) -> None:
        if self._writer is None or self._writer.done():
            self._wake = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._run())

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        logger.warning(
            "dropped %d prediction row(s): %s (%d dropped so far)", count, why, self.dropped,
            extra={"dropped": count},
        )  # fmt: skip
        if self._on_drop is not None:
            self._on_drop(count)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write every waiting row, ``flush_rows`` at a time; False when the store refused.

        Rows of a failed write go back to the front of the buffer, as many as fit.
        """
        while self._buffer:
            count = min(len(self._buffer), self.flush_rows)
            rows = [self._buffer.popleft() for _ in range(count)]
            try:
                await asyncio.to_thread(write_predictions, self._engine(), rows)
            except Exception as e:  # noqa: BLE001 - the store is down: keep the rows, retry later
                room = self.max_buffered_rows - len(self._buffer)
                kept = rows[: max(room, 0)]
                self._buffer.extendleft(reversed(kept))
                if len(kept) < len(rows):
                    self._drop(len(rows) - len(kept), "the store is down and the buffer is full")
                if not self._failing:
                    logger.warning("cannot write predictions, will retry: %s", e)
                self._failing = True
                return False
            self.written += count
            if self._failing:
                logger.info("writing predictions again")
                self._failing = False
        return True

    async def close(self) -> None:
        """Stop the writer and write what is left (one try)."""
        self._closing = True
        if self._writer is not None and self._wake is not None:
            self._wake.set()
            await self._writer  # ends after its current flush
            self._writer = None
        if self._buffer and not await self.flush():
            self._drop(len(self._buffer), "the store is down at shutdown")
            self._buffer.clear()
