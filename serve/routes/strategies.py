"""Strategies over HTTP: backtests ranked, stored runs' performance (``/api/v1/strategies``).

The same scores as EvaluateStrategy (:class:`serve.strategies.StrategyService`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from serve.routes.common import ApiKeyHeader, answer
from serve.strategies import RunKeyDoc, StrategyBacktestDoc, scored_json

if TYPE_CHECKING:
    from serve.ingress import Ingress

MAX_RANKED = 100
MAX_LISTED = 500


class RankItem(BaseModel):
    """One strategy to rank: a backtest in the MLExport JSON shape, or a stored run's key."""

    model_config = ConfigDict(extra="forbid")

    backtest: StrategyBacktestDoc | None = None
    stored_run: RunKeyDoc | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RankItem:
        if (self.backtest is None) == (self.stored_run is None):
            raise ValueError("set exactly one of backtest and stored_run")
        return self


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategies: list[RankItem] = Field(min_length=1, max_length=MAX_RANKED)


class Drawdown(BaseModel):
    samples: int
    mean: float
    p50: float
    p95: float
    p99: float
    historical: float


class RunKey(BaseModel):
    strategy_id: str
    strategy_version: str
    period_start: datetime
    period_end: datetime


class StrategyScore(BaseModel):
    strategy_id: str
    strategy_name: str
    strategy_version: str
    run: RunKey | None = None
    score: float
    risk_adjusted_return: float
    drawdown: Drawdown
    overfit_score: float | None = None
    expected_oos_roi: float
    expected_oos_source: str
    probability_of_ruin: float
    warnings: list[str]
    scoring_version: str


class RankedStrategy(StrategyScore):
    rank: int
    index: int = Field(description="Position of the strategy in the request.")


class RankResponse(BaseModel):
    ranking: list[RankedStrategy]


class RunPerformance(StrategyScore):
    summary: dict[str, Any]
    metrics: dict[str, Any]


class PerformanceResponse(BaseModel):
    runs: list[RunPerformance]


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/strategies", tags=["strategies"])
    strategies = ingress.strategies

    @routes.post("/rank", response_model=RankResponse)
    async def rank(body: RankRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """Score strategies (backtests given in full or stored runs), best first."""
        items = [s.backtest or s.stored_run for s in body.strategies]

        async def ranked() -> dict[str, Any]:
            scored = await strategies.rank(items)  # type: ignore[arg-type]
            return {
                "ranking": [
                    {**scored_json(s), "rank": n + 1, "index": i} for n, (i, s) in enumerate(scored)
                ]
            }

        return await answer(ingress, ranked, x_api_key)

    @routes.get("/performance", response_model=PerformanceResponse)
    async def performance(
        strategy_id: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """Stored backtest runs (latest first) with their metrics and scores."""

        async def listed() -> dict[str, Any]:
            runs = await strategies.performance(strategy_id, limit)
            return {"runs": [
                {**scored_json(s), "summary": s.summary.model_dump(mode="json") if s.summary
                 else {}, "metrics": s.metrics.model_dump(mode="json", exclude_none=True)
                 if s.metrics else {}}
                for s in runs
            ]}  # fmt: skip

        return await answer(ingress, listed, x_api_key)

    return routes
