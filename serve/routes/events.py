"""Results: settle a stored event, so the next prediction of its participants sees it.

``POST /api/v1/events/{event_key}/result`` takes a match's final score (every market decidable
from it is settled: 1X2, moneyline, totals) and/or the winning selection of named markets (races:
``{"winners": {"win": "Runner"}}``). It writes the result and a settlement in one transaction,
then folds it into the online feature state before answering, so a prediction sent after the
answer sees it. Settling again with the same result answers 200 with ``already_settled``; another
result for a settled event is refused (422). Needs the API key always.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from betting.errors import NotFound
from betting.settlement import settle_event
from betting.store import session_scope
from serve.errors import ResourceNotFound
from serve.routes.common import ApiKeyHeader, answer

if TYPE_CHECKING:
    from serve.ingress import Ingress

MAX_SCORE = 999


class ResultBody(BaseModel):
    """A final score and/or the winners of named markets."""

    model_config = ConfigDict(extra="forbid")

    home_score: Annotated[int, Field(ge=0, le=MAX_SCORE)] | None = None
    away_score: Annotated[int, Field(ge=0, le=MAX_SCORE)] | None = None
    winners: dict[Annotated[str, Field(min_length=1, max_length=40)],
                  Annotated[str, Field(min_length=1, max_length=120)]] | None = Field(
        default=None, max_length=50,
        description="Winning selection name per market key, e.g. {\"win\": \"Runner A\"}.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _something_to_settle(self) -> ResultBody:
        if (self.home_score is None) != (self.away_score is None):
            raise ValueError("home_score and away_score come together")
        if self.home_score is None and not self.winners:
            raise ValueError("give home_score and away_score, or winners")
        return self


class FeatureStateAnswer(BaseModel):
    """The sport's online feature state after the result was folded in."""

    version: str
    applied_events: int
    last_event_key: str


class ResultAnswer(BaseModel):
    """What settling did."""

    event_key: str
    sport: str
    starts_at: datetime
    markets_settled: int
    already_settled: bool
    feature_state: FeatureStateAnswer


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/events", tags=["events"])

    @routes.post(
        "/{event_key}/result",
        response_model=ResultAnswer,
        status_code=201,
        responses={
            200: {"model": ResultAnswer, "description": "Already settled with this result."},
            404: {"description": "No stored event has the key."},
            422: {
                "description": "A bad field, an unknown market or selection, or a result "
                "other than the stored one."
            },
        },
    )
    async def settle(
        body: ResultBody,
        event_key: Annotated[str, Path(min_length=1, max_length=200)],
        x_api_key: ApiKeyHeader = None,
    ) -> Any:
        """Store an event's result and fold it into the online feature state."""

        def store() -> ResultAnswer:
            try:
                with session_scope(ingress.store_engine()) as session:
                    report = settle_event(
                        session, event_key, home_score=body.home_score,
                        away_score=body.away_score, winners=body.winners,
                    )  # fmt: skip
            except NotFound as e:
                raise ResourceNotFound("event", event_key, str(e)) from e
            states = ingress.service.features.states
            local = states.current(report.sport)
            state = local.kept.state
            return ResultAnswer(
                event_key=report.event_key, sport=report.sport, starts_at=report.starts_at,
                markets_settled=report.markets_settled, already_settled=report.already_settled,
                feature_state=FeatureStateAnswer(
                    version=states.version(report.sport), applied_events=state.applied,
                    last_event_key=state.last_key,
                ),
            )  # fmt: skip

        async def run() -> Any:
            result = await asyncio.to_thread(store)
            status = 200 if result.already_settled else 201
            return JSONResponse(result.model_dump(mode="json"), status_code=status)

        return await answer(ingress, run, x_api_key, "write", route="events")

    return routes
