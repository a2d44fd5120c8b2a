"""Helpers shared by the serving tests: stored events in the form a gRPC caller sends them."""

from __future__ import annotations

import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp

from betting.batch import EventBatch
from serve.proto.betml.v1 import ml_service_pb2 as pb

_KINDS = {
    "open": pb.ODDS_KIND_OPEN,
    "pre_close": pb.ODDS_KIND_PRE_CLOSE,
    "close": pb.ODDS_KIND_CLOSE,
}
_TYPES = {"1x2": pb.MARKET_TYPE_MATCH_ODDS, "total": pb.MARKET_TYPE_TOTAL}


def timestamp(value: object) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(pd.Timestamp(value).to_pydatetime())
    return ts


def as_raw_event(batch: EventBatch, key: str) -> pb.Event:
    """A stored event as a caller would send it in full (its results left out)."""
    event = batch.events.set_index("event_key").loc[key]
    raw = pb.Event(
        event_key=key,
        sport=event.sport,
        competition=event.competition,
        season=event.season,
        starts_at=timestamp(event.starts_at),
        matchup=pb.Matchup(home=event.home, away=event.away),
    )
    odds = batch.odds[batch.odds["event_key"] == key]
    for market in batch.markets[batch.markets["event_key"] == key].itertuples():
        proto = raw.markets.add(market_key=market.market_key, type=_TYPES[market.type])
        if pd.notna(market.line):
            proto.line = float(market.line)
        selections = batch.selections[
            (batch.selections["event_key"] == key)
            & (batch.selections["market_key"] == market.market_key)
        ].sort_values("position")
        for selection in selections.itertuples():
            entry = proto.selections.add(
                name=selection.name,
                participant=selection.participant if isinstance(selection.participant, str) else "",
            )
            quotes = odds[
                (odds["market_key"] == market.market_key) & (odds["selection"] == selection.name)
            ]
            for quote in quotes.itertuples():
                entry.odds.add(
                    bookmaker=quote.bookmaker,
                    kind=_KINDS[quote.kind],
                    price=quote.price,
                    captured_at=timestamp(quote.captured_at),
                )
    return raw
