"""SubmitBacktestFeedback: the Go backtester's export, from its proto form to the store.

:func:`export_from_proto` turns a ``betml.v1.BacktestExport`` into the
:class:`~betting.ingest.backtest_export.MLExport` that ``betml data import-backtest`` reads from
JSON (enums become its lower-case strings, Timestamps UTC datetimes, the Struct a dict), so both
ways in share one set of rules. Every broken rule is reported at once, each field named by its
path in the request (``export.bets[3].odds``). :func:`store_export` writes it with
:func:`~betting.ingest.backtest_export.import_backtest_export`, idempotently by strategy id,
version and period. :func:`export_to_proto` is the reverse, for clients and tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError
from sqlalchemy import Engine

from betting.ingest import ImportReport
from betting.ingest.backtest_export import MLExport, import_backtest_export, stored_run_id
from betting.store import session_scope
from serve.errors import BadRequest, FieldViolation
from serve.proto.betml.v1 import ml_service_pb2 as pb

logger = logging.getLogger(__name__)

#: Path of the export in SubmitBacktestFeedbackRequest.
EXPORT_FIELD = "export"

BET_OUTCOMES: dict[int, str] = {
    pb.BET_OUTCOME_WON: "won",
    pb.BET_OUTCOME_LOST: "lost",
    pb.BET_OUTCOME_VOID: "void",
    pb.BET_OUTCOME_PENDING: "pending",
}
RISK_LEVELS: dict[int, str] = {
    pb.RISK_LEVEL_LOW: "low",
    pb.RISK_LEVEL_MEDIUM: "medium",
    pb.RISK_LEVEL_HIGH: "high",
    pb.RISK_LEVEL_VERY_HIGH: "very_high",
}


@dataclass(frozen=True)
class StoredExport:
    """What storing one export did: the import's counts and the stored run's id."""

    report: ImportReport
    run_id: int


class _Converter:
    """Walks a proto message into plain values, noting the fields that cannot be converted."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def message(self, message: Message, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in message.DESCRIPTOR.fields:
            name, at = field.name, f"{path}.{field.name}"
            value = getattr(message, name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                out[name] = dict(value)
            elif field.is_repeated:
                out[name] = [self.value(field, v, f"{at}[{i}]") for i, v in enumerate(value)]
            elif field.has_presence:  # messages and proto3 ``optional`` scalars
                if message.HasField(name):
                    out[name] = self.value(field, value, at)
                # unset: left out, so the model's default or "is required" applies
            else:
                out[name] = self.value(field, value, at)
        return out

    def value(self, field: Any, value: Any, path: str) -> Any:
        if isinstance(value, Timestamp):
            return self.timestamp(value, path)
        if (
            field.message_type is not None
            and field.message_type.full_name == "google.protobuf.Struct"
        ):
            return json_format.MessageToDict(value)
        if isinstance(value, Message):
            return self.message(value, path)
        if field.enum_type is not None:
            return self.enum(field, value, path)
        return value

    def timestamp(self, value: Timestamp, path: str) -> datetime | None:
        try:
            return value.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as e:
            self.problems[path] = (
                f"is not a valid timestamp ({value.seconds}s, {value.nanos}ns): {e}"
            )
            return None

    def enum(self, field: Any, value: int, path: str) -> str | None:
        names = BET_OUTCOMES if field.enum_type.full_name == "betml.v1.BetOutcome" else RISK_LEVELS
        if value in names:
            return names[value]
        allowed = ", ".join(field.enum_type.values_by_number[n].name for n in names)
        shown = field.enum_type.values_by_number.get(value)
        got = shown.name if shown is not None else str(value)
        self.problems[path] = f"is required: one of {allowed}, got {got}"
        return None


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if part != "[key]":  # pydantic's marker of a bad map key, named by the part before
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _reason(error: Any) -> str:
    reason = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "is required"
    value = error.get("input")
    if not isinstance(value, dict | list):
        shown = repr(value)
        reason += f" (got {shown[:77] + '...' if len(shown) > 80 else shown})"
    return reason


def export_from_proto(message: pb.BacktestExport, path: str = EXPORT_FIELD) -> MLExport:
    """The :class:`MLExport` a proto export holds.

    Args:
        message: the export.
        path: the export's field path in the request, prefixed to every reported field.

    Raises:
        BadRequest: naming every bad field by its path (``export.bets[3].odds``) and reason.
    """
    converter = _Converter()
    document = converter.message(message, path)
    violations = [FieldViolation(p, r) for p, r in converter.problems.items()]
    try:
        export = MLExport.model_validate(document)
    except ValidationError as e:
        for error in e.errors():
            at = _path(path, tuple(error["loc"]))
            if at not in converter.problems:  # already reported with a better reason
                violations.append(FieldViolation(at, _reason(error)))
    else:
        if not violations:
            return export
    raise BadRequest(violations)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def export_to_proto(export: MLExport) -> pb.BacktestExport:
    """The proto form of an export (the inverse of :func:`export_from_proto`)."""
    outcomes = {v: k for k, v in BET_OUTCOMES.items()}
    levels = {v: k for k, v in RISK_LEVELS.items()}
    document = export.model_dump(mode="json", exclude_none=True)
    for bet in document["bets"]:
        bet["outcome"] = outcomes[bet["outcome"]]
    document["risk_profile"]["risk_level"] = levels[document["risk_profile"]["risk_level"]]
    return json_format.ParseDict(document, pb.BacktestExport())


def run_key(export: MLExport) -> pb.BacktestRunKey:
    """The idempotency key of an export's run."""
    return pb.BacktestRunKey(
        strategy_id=export.strategy.id,
        strategy_version=export.strategy.version,
        period_start=_timestamp(export.summary.period_start),
        period_end=_timestamp(export.summary.period_end),
    )


def store_export(engine: Engine, export: MLExport) -> StoredExport:
    """Store ``export`` in its own transaction (blocking: call it from a worker thread).

    Idempotent: a run already stored is left as it is and reported skipped.
    """
    with session_scope(engine) as session:
        report = import_backtest_export(session, export)
        run_id = stored_run_id(session, export)
    assert run_id is not None  # added or already there
    return StoredExport(report, run_id)


def feedback_response(export: MLExport, stored: StoredExport) -> pb.SubmitBacktestFeedbackResponse:
    """SubmitBacktestFeedback's answer: the run's key and what was added."""
    report = stored.report
    return pb.SubmitBacktestFeedbackResponse(
        run=run_key(export),
        runs_added=report.runs_added,
        runs_skipped=report.runs_skipped,
        bets_added=report.bets_added,
        equity_points_added=report.equity_points_added,
    )


class FeedbackIntake:
    """SubmitBacktestFeedback and the backtest-results import: check, store, count.

    Args:
        engine: gives the store's engine (called in the worker thread that stores).
        on_submit: called with ``added``, ``skipped`` or ``refused`` per export (a counter).
    """

    def __init__(
        self, engine: Callable[[], Engine], on_submit: Callable[[str], None] | None = None
    ) -> None:
        self._engine = engine
        self._on_submit = on_submit or (lambda _: None)

    async def submit(
        self, request: pb.SubmitBacktestFeedbackRequest
    ) -> pb.SubmitBacktestFeedbackResponse:
        """The RPC: convert (INVALID_ARGUMENT naming each bad field), store, answer the counts."""
        try:
            if not request.HasField("export"):
                raise BadRequest.of(EXPORT_FIELD, "is required")
            export = export_from_proto(request.export)
        except BadRequest:
            self._on_submit("refused")
            raise
        return feedback_response(export, await self.store(export))

    async def store(self, export: MLExport) -> StoredExport:
        """Store a checked export in a worker thread; idempotent."""
        stored = await asyncio.to_thread(lambda: store_export(self._engine(), export))
        self._on_submit("added" if stored.report.runs_added else "skipped")
        logger.info(
            "backtest %s@%s: %s", export.strategy.id, export.strategy.version,
            "stored" if stored.report.runs_added else "already stored, skipped",
            extra={"run_id": stored.run_id, "bets": stored.report.bets_added},
        )  # fmt: skip
        return stored
