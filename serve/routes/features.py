"""The inputs of the models over HTTP: ``/api/v1/features/extract`` (GetFeatures) and
``/api/v1/preprocess`` (the market view of an event's prices, :mod:`serve.preprocess`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from serve import http
from serve.errors import ResourceNotFound
from serve.preprocess import market_view
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import features_request
from serve.routes.common import ApiKeyHeader, answer, answer_proto

if TYPE_CHECKING:
    from serve.ingress import Ingress


class EventRequest(BaseModel):
    """GetFeaturesRequest: an event given in full (``raw_event``) or named (``event_key``)."""

    model_config = ConfigDict(extra="forbid")

    raw_event: http.Event | None = None
    event_key: str | None = None
    market_keys: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_event(self) -> EventRequest:
        if (self.raw_event is None) == (self.event_key is None):
            raise ValueError("set exactly one of raw_event and event_key")
        return self


class SelectionFeatures(BaseModel):
    market_key: str
    selection: str
    values: list[float | str] = Field(description="values[i] is feature_names[i]; NaN as 'NaN'.")


class FeaturesResponse(BaseModel):
    event_key: str
    feature_schema_version: str
    feature_names: list[str]
    selections: list[SelectionFeatures]


class BookmakerPrices(BaseModel):
    bookmaker: str
    odds: dict[str, float]
    overround: float = Field(description="Sum of implied probabilities minus one.")
    implied: dict[str, float] = Field(description="1 / odds, margin included.")
    proportional: dict[str, float] = Field(description="Margin removed proportionally.")
    shin: dict[str, float] = Field(description="Margin removed by Shin's method.")


class SelectionView(BaseModel):
    selection: str
    best_odds: float | None
    best_bookmaker: str | None
    consensus_probability: float | None = Field(
        description="Mean of the bookmakers' Shin probabilities (complete price sets only)."
    )


class MarketView(BaseModel):
    market_key: str
    selections: list[SelectionView]
    bookmakers: list[BookmakerPrices] = Field(
        description="Each bookmaker's latest price for every selection of the market."
    )
    incomplete_bookmakers: list[str] = Field(
        description="Bookmakers missing a price for some selection (left out of the above)."
    )


class PreprocessResponse(BaseModel):
    event_key: str
    sport: str
    markets: list[MarketView]


def router(ingress: Ingress) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["features"])
    service = ingress.service

    @routes.post("/features/extract", response_model=FeaturesResponse)
    async def extract(body: EventRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """GetFeatures over HTTP: the model inputs betml computes for the event's selections."""
        return await answer_proto(
            ingress,
            lambda: service.get_features(http.to_proto(body, pb.GetFeaturesRequest())),
            x_api_key,
        )

    @routes.post("/preprocess", response_model=PreprocessResponse)
    async def preprocess(body: EventRequest, x_api_key: ApiKeyHeader = None) -> Any:
        """The event's prices checked and cleaned: per bookmaker the latest complete price set,
        its overround and margin-free probabilities; per selection the best price and the
        consensus probability."""

        async def view() -> dict[str, Any]:
            request = http.to_proto(body, pb.GetFeaturesRequest())
            item = features_request(request, datetime.now(UTC))
            event = await service.event_of(item)
            out = market_view(event)
            known = [m["market_key"] for m in out["markets"]]
            for key in item.market_keys:
                if key not in known:
                    raise ResourceNotFound(
                        "market", f"{item.event_key}/{key}",
                        f"event {item.event_key!r} has no market {key!r} (it has {known})",
                    )  # fmt: skip
            if item.market_keys:
                out["markets"] = [m for m in out["markets"] if m["market_key"] in item.market_keys]
            return out

        return await answer(ingress, view, x_api_key)

    return routes
