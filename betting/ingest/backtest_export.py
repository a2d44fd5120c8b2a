"""The Go backtesting service's export (``MLExport``): a strategy's backtest as one JSON document.

The document (snake_case field names, timestamps in RFC 3339 with an offset) holds the strategy
(id, name, version, description, parameters), a summary of the backtest period, metrics per
evaluation method (``historical``, ``monte_carlo``, ``walk_forward``), the bet history, the
equity curve and a risk profile. ``betting/ingest/example_backtest_export.json`` is a complete
example.

Unknown fields are refused, everywhere but in ``strategy.parameters`` (free-form): a misspelt or
newer field is reported with its path (``bets[3].stake_amount``) rather than silently dropped,
so an export never loses data on its way in. Exports whose ``schema_version`` has another major
version than :data:`SCHEMA_VERSION` are refused.

:func:`import_backtest_export` writes one :class:`~betting.schema.BacktestRun` with its
:class:`~betting.schema.BacktestBet` and :class:`~betting.schema.EquityPoint` rows. A run is
identified by (strategy id, strategy version, period start, period end): importing an export
whose run is already stored adds nothing and reports it skipped (the stored run is kept as it
is; give a re-run a new strategy version to keep both).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from betting import schema
from betting.errors import ImportRejected, RowProblem
from betting.ingest import ImportReport

logger = logging.getLogger(__name__)

#: The export format this module reads; exports of another major version are refused.
SCHEMA_VERSION = "1.0"
EXAMPLE_PATH = Path(__file__).with_name("example_backtest_export.json")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Percentile = Annotated[str, StringConstraints(pattern=r"^p\d{1,2}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StrategyMetadata(_Strict):
    """The strategy that was backtested."""

    id: str = Field(min_length=1, max_length=120)
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=40)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class BacktestSummary(_Strict):
    """The backtest's period and its headline numbers (roi is profit over total staked)."""

    period_start: AwareDatetime
    period_end: AwareDatetime
    initial_capital: float = Field(gt=0)
    final_capital: float = Field(ge=0)
    total_bets: int = Field(ge=0)
    win_rate: Fraction
    roi: float
    profit: float

    @model_validator(mode="after")
    def _period_in_order(self) -> BacktestSummary:
        if self.period_end < self.period_start:
            raise ValueError(
                f"period_end {self.period_end.isoformat()} is before "
                f"period_start {self.period_start.isoformat()}"
            )
        return self


class MethodMetrics(_Strict):
    """Performance under one evaluation method; drawdown is a fraction of peak equity.

    ``profit_factor`` (gross winnings over gross losses) is null when no bet lost.
    """

    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: Fraction
    roi: float
    profit_factor: float | None = Field(default=None, ge=0)
    win_rate: Fraction


class MonteCarloMetrics(MethodMetrics):
    """Metrics over resampled bet sequences.

    Attributes:
        simulations: how many sequences were resampled.
        final_equity_percentiles: final equity by percentile, keys ``p5``, ``p50``, ``p95``...
        probability_of_profit: share of sequences ending above the initial capital.
        probability_of_ruin: share of sequences falling below half the initial capital.
    """

    simulations: int = Field(gt=0)
    final_equity_percentiles: dict[Percentile, float] = Field(min_length=1)
    probability_of_profit: Fraction
    probability_of_ruin: Fraction


class WalkForwardWindow(_Strict):
    """One walk-forward step: fitted on the train span, judged on the test span that follows."""

    train_start: AwareDatetime
    train_end: AwareDatetime
    test_start: AwareDatetime
    test_end: AwareDatetime
    bets: int = Field(ge=0)
    roi: float
    profit: float
    sharpe_ratio: float | None = None

    @model_validator(mode="after")
    def _spans_in_order(self) -> WalkForwardWindow:
        stamps = [self.train_start, self.train_end, self.test_start, self.test_end]
        if stamps != sorted(stamps):
            raise ValueError("expected train_start <= train_end <= test_start <= test_end")
        return self


class WalkForwardMetrics(MethodMetrics):
    """Metrics over the test windows of a walk-forward validation."""

    windows: list[WalkForwardWindow] = Field(min_length=1)


class BacktestMetrics(_Strict):
    """Metrics per evaluation method; only the historical replay is required."""

    historical: MethodMetrics
    monte_carlo: MonteCarloMetrics | None = None
    walk_forward: WalkForwardMetrics | None = None


class BetRecord(_Strict):
    """One bet of the history; ``confidence`` is the strategy's probability that it wins."""

    placed_at: AwareDatetime
    event_ref: str = Field(min_length=1, max_length=200)
    market: str = Field(min_length=1, max_length=40)
    selection: str = Field(min_length=1, max_length=120)
    odds: float = Field(gt=1.0)
    confidence: Fraction
    expected_value: float
    stake: float = Field(ge=0)
    outcome: Literal["won", "lost", "void", "pending"]
    pnl: float


class EquityRecord(_Strict):
    """The equity at one moment of the backtest."""

    timestamp: AwareDatetime
    equity: float


class RiskProfile(_Strict):
    """Risk of the strategy; drawdown and VaR are fractions of capital."""

    max_drawdown: Fraction
    var_95: float = Field(ge=0)
    volatility: float = Field(ge=0)
    kelly_fraction: Fraction
    risk_level: Literal["low", "medium", "high", "very_high"]


class MLExport(_Strict):
    """The whole export of one backtest."""

    schema_version: str
    exported_at: AwareDatetime
    strategy: StrategyMetadata
    summary: BacktestSummary
    metrics: BacktestMetrics
    bets: list[BetRecord]
    equity_curve: list[EquityRecord]
    risk_profile: RiskProfile

    @field_validator("schema_version")
    @classmethod
    def _known_major_version(cls, value: str) -> str:
        if value.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"schema_version {value!r} is not {SCHEMA_VERSION} compatible")
        return value

    @field_validator("equity_curve")
    @classmethod
    def _curve_in_time_order(cls, curve: list[EquityRecord]) -> list[EquityRecord]:
        for i in range(1, len(curve)):
            if curve[i].timestamp < curve[i - 1].timestamp:
                raise ValueError(f"equity_curve[{i}] is earlier than equity_curve[{i - 1}]")
        return curve


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def _reason(error: Any) -> str:
    reason = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] != "missing" and not isinstance(value, dict | list):
        shown = repr(value)
        reason += f" (got {shown[:77] + '...' if len(shown) > 80 else shown})"
    return reason


def parse_backtest_export(data: str | bytes, source: str = "<backtest export>") -> MLExport:
    """Validate an export given as JSON text.

    Raises:
        ImportRejected: with the line and column of malformed JSON, or the path
            (``bets[3].odds``) and reason of every invalid field.
    """
    try:
        document = json.loads(data)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise ImportRejected(source, [RowProblem(source, where, f"malformed JSON: {e.msg}")]) from e
    except UnicodeDecodeError as e:
        raise ImportRejected(source, [RowProblem(source, "file", f"not UTF-8 text: {e}")]) from e
    try:
        return MLExport.model_validate(document)
    except ValidationError as e:
        problems = [RowProblem(source, _field_path(err["loc"]), _reason(err)) for err in e.errors()]
        raise ImportRejected(source, problems) from e


def load_backtest_export(path: Path | str) -> MLExport:
    """Read and validate an export file.

    Raises:
        ImportRejected: as :func:`parse_backtest_export` does, or when the file cannot be read.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImportRejected(source, [RowProblem(source, "file", f"cannot read: {e}")]) from e
    return parse_backtest_export(data, source)


def stored_run_id(session: Session, export: MLExport) -> int | None:
    """Id of the stored run with the export's strategy id, version and period, if any."""
    run = schema.BacktestRun
    return session.scalar(
        select(run.id).where(
            run.strategy_id == export.strategy.id,
            run.strategy_version == export.strategy.version,
            run.period_start == export.summary.period_start,
            run.period_end == export.summary.period_end,
        )
    )


def _run_row(export: MLExport) -> schema.BacktestRun:
    strategy, summary = export.strategy, export.summary
    return schema.BacktestRun(
        strategy_id=strategy.id,
        strategy_name=strategy.name,
        strategy_version=strategy.version,
        period_start=summary.period_start,
        period_end=summary.period_end,
        initial_capital=summary.initial_capital,
        final_capital=summary.final_capital,
        parameters=strategy.parameters,
        summary=summary.model_dump(mode="json")
        | {"description": strategy.description, "schema_version": export.schema_version},
        metrics=export.metrics.model_dump(mode="json", exclude_none=True),
        risk_profile=export.risk_profile.model_dump(mode="json"),
        exported_at=export.exported_at,
    )


def import_backtest_export(session: Session, export: MLExport | Path | str) -> ImportReport:
    """Store one backtest export (an :class:`MLExport` or a file) in the caller's transaction.

    Idempotent: a run with the same strategy id, version and period is skipped. Never commits.

    Raises:
        ImportRejected: when a file does not hold a valid export; nothing is written.
    """
    if isinstance(export, MLExport):
        source = f"backtest {export.strategy.id}@{export.strategy.version}"
    else:
        source, export = str(export), load_backtest_export(export)
    if stored_run_id(session, export) is not None:
        logger.info("%s: run already stored; skipped", source)
        return ImportReport(source=source, runs_skipped=1)
    run = _run_row(export)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        if stored_run_id(session, export) is None:
            raise
        logger.info("%s: run stored meanwhile by another import; skipped", source)
        return ImportReport(source=source, runs_skipped=1)
    bets = [
        {"run_id": run.id, "seq": seq} | bet.model_dump() for seq, bet in enumerate(export.bets)
    ]
    points = [
        {"run_id": run.id, "seq": seq, "at": p.timestamp, "equity": p.equity}
        for seq, p in enumerate(export.equity_curve)
    ]
    if bets:
        session.execute(insert(schema.BacktestBet), bets)
    if points:
        session.execute(insert(schema.EquityPoint), points)
    session.flush()
    report = ImportReport(
        source=source,
        runs_added=1,
        bets_added=len(bets),
        equity_points_added=len(points),
    )
    logger.info("imported %s", report)
    return report
