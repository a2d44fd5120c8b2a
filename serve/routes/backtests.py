"""Backtest results: import the Go backtester's export (MLExport JSON), list and read stored runs.

``POST /api/v1/backtest-results`` takes the document ``betml data import-backtest`` reads (201
when the run is new, 200 with ``runs_skipped`` 1 when it is already stored; 422 naming each bad
field) and needs the API key always; ``GET /api/v1/backtest-results`` lists stored runs with
their headline numbers, and ``GET /api/v1/backtest-results/{id}`` gives one run with its metrics
and risk profile, plus its bets and equity curve on ``?include=bets,equity``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from betting.ingest.backtest_export import MLExport
from betting.schema import BacktestBet, BacktestRun, EquityPoint
from betting.store import session_scope
from serve.errors import BadRequest, ResourceNotFound
from serve.routes.common import ApiKeyHeader, answer

if TYPE_CHECKING:
    from serve.ingress import Ingress

INCLUDES = ("bets", "equity")
MAX_LIMIT = 500


class RunKey(BaseModel):
    """A run's identity (its idempotency key)."""

    strategy_id: str
    strategy_version: str
    period_start: datetime
    period_end: datetime


class ImportAnswer(BaseModel):
    """What importing one export did."""

    id: int = Field(description="Id of the stored run (the new one, or the one already stored).")
    run: RunKey
    runs_added: int
    runs_skipped: int
    bets_added: int
    equity_points_added: int


class RunSummary(BaseModel):
    """A stored run with its headline numbers."""

    id: int
    strategy_id: str
    strategy_name: str
    strategy_version: str
    period_start: datetime
    period_end: datetime
    initial_capital: float
    final_capital: float
    total_bets: int | None = None
    win_rate: float | None = None
    roi: float | None = None
    profit: float | None = None
    sharpe_ratio: float | None = None
    max_drawdown: float | None = None
    imported_at: datetime


class RunList(BaseModel):
    """A page of stored runs, newest import first."""

    total: int = Field(description="Runs matching the filters, over all pages.")
    limit: int
    offset: int
    runs: list[RunSummary]


class Bet(BaseModel):
    placed_at: datetime
    event_ref: str
    market: str
    selection: str
    odds: float
    confidence: float
    expected_value: float
    stake: float
    outcome: str
    pnl: float


class Point(BaseModel):
    timestamp: datetime
    equity: float


class RunDetail(RunSummary):
    """A stored run in full; ``bets`` and ``equity_curve`` only when asked for."""

    description: str = ""
    parameters: dict[str, Any]
    summary: dict[str, Any]
    metrics: dict[str, Any]
    risk_profile: dict[str, Any]
    exported_at: datetime | None = None
    bets: list[Bet] | None = None
    equity_curve: list[Point] | None = None


def _summary(run: BacktestRun) -> dict[str, Any]:
    historical = run.metrics.get("historical", {})
    return {
        "id": run.id, "strategy_id": run.strategy_id, "strategy_name": run.strategy_name,
        "strategy_version": run.strategy_version, "period_start": run.period_start,
        "period_end": run.period_end, "initial_capital": run.initial_capital,
        "final_capital": run.final_capital, "total_bets": run.summary.get("total_bets"),
        "win_rate": run.summary.get("win_rate"), "roi": run.summary.get("roi"),
        "profit": run.summary.get("profit"), "sharpe_ratio": historical.get("sharpe_ratio"),
        "max_drawdown": historical.get("max_drawdown"), "imported_at": run.imported_at,
    }  # fmt: skip


def list_runs(
    session: Session, *, strategy_id: str | None, since: datetime | None, limit: int, offset: int
) -> RunList:
    """Stored runs, newest import first; ``since`` filters on the import time."""
    conditions = []
    if strategy_id:
        conditions.append(BacktestRun.strategy_id == strategy_id)
    if since is not None:
        conditions.append(BacktestRun.imported_at >= since)
    total = session.scalar(select(func.count()).select_from(BacktestRun).where(*conditions)) or 0
    runs = session.scalars(
        select(BacktestRun).where(*conditions)
        .order_by(BacktestRun.imported_at.desc(), BacktestRun.id.desc())
        .limit(limit).offset(offset)
    )  # fmt: skip
    summaries = [RunSummary.model_validate(_summary(run)) for run in runs]
    return RunList(total=total, limit=limit, offset=offset, runs=summaries)


def get_run(session: Session, run_id: int, include: set[str]) -> RunDetail:
    """One stored run; its bets and equity curve when ``include`` names them.

    Raises:
        ResourceNotFound: no run has this id.
    """
    run = session.get(BacktestRun, run_id)
    if run is None:
        raise ResourceNotFound("backtest_run", str(run_id), f"no backtest run has id {run_id}")
    detail: dict[str, Any] = _summary(run) | {
        "description": run.summary.get("description", ""), "parameters": run.parameters,
        "summary": run.summary, "metrics": run.metrics, "risk_profile": run.risk_profile,
        "exported_at": run.exported_at,
    }  # fmt: skip
    if "bets" in include:
        bets = session.scalars(
            select(BacktestBet).where(BacktestBet.run_id == run_id).order_by(BacktestBet.seq)
        )
        detail["bets"] = [{name: getattr(bet, name) for name in Bet.model_fields} for bet in bets]
    if "equity" in include:
        points = session.scalars(
            select(EquityPoint).where(EquityPoint.run_id == run_id).order_by(EquityPoint.seq)
        )
        detail["equity_curve"] = [{"timestamp": p.at, "equity": p.equity} for p in points]
    return RunDetail.model_validate(detail)


def _includes(text: str) -> set[str]:
    parts = {p.strip() for p in text.split(",") if p.strip()}
    unknown = sorted(parts - set(INCLUDES))
    if unknown:
        raise BadRequest.of("include", f"{unknown} not among {list(INCLUDES)}")
    return parts


def _read(engine: Engine, read: Any) -> Any:
    with session_scope(engine) as session:
        return read(session)


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/backtest-results", tags=["backtests"])

    async def in_thread(read: Any) -> Any:
        return await asyncio.to_thread(lambda: _read(ingress.store_engine(), read))

    @routes.post(
        "",
        response_model=ImportAnswer,
        status_code=201,
        responses={200: {"model": ImportAnswer, "description": "Already stored: skipped."}},
    )
    async def import_backtest(body: MLExport, x_api_key: ApiKeyHeader = None) -> Any:
        """Store one backtest export (SubmitBacktestFeedback over HTTP); idempotent by strategy
        id, version and period."""

        async def store() -> Any:
            stored = await ingress.feedback.store(body)
            report, key = stored.report, body.strategy
            result = ImportAnswer(
                id=stored.run_id,
                run=RunKey(
                    strategy_id=key.id, strategy_version=key.version,
                    period_start=body.summary.period_start, period_end=body.summary.period_end,
                ),
                runs_added=report.runs_added, runs_skipped=report.runs_skipped,
                bets_added=report.bets_added, equity_points_added=report.equity_points_added,
            )  # fmt: skip
            status = 201 if report.runs_added else 200
            return JSONResponse(result.model_dump(mode="json"), status_code=status)

        return await answer(ingress, store, x_api_key, "write", route="backtest-results")

    @routes.get("", response_model=RunList)
    async def list_backtests(
        strategy_id: str | None = None,
        since: Annotated[datetime | None, Query(description="Runs imported at or after.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """Stored backtest runs with their headline numbers, newest import first."""

        async def read() -> Any:
            return await in_thread(
                lambda s: list_runs(
                    s, strategy_id=strategy_id, since=since, limit=limit, offset=offset
                )
            )

        return await answer(ingress, read, x_api_key, "read", route="backtest-results")

    @routes.get("/{run_id}", response_model=RunDetail, response_model_exclude_none=True)
    async def get_backtest(
        run_id: int,
        include: Annotated[str, Query(description="Comma-separated: bets, equity.")] = "",
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """One stored run with metrics and risk profile; bets and equity curve on request."""

        async def read() -> Any:
            parts = _includes(include)
            return await in_thread(lambda s: get_run(s, run_id, parts))

        return await answer(ingress, read, x_api_key, "read", route="backtest-results")

    return routes
