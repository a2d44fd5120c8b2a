"""From a market's model probabilities and prices to GetPrediction's answer.

The betting rules (EV, Kelly, tiers, minimum acceptable odds) are :mod:`betting.odds`'s; this
module only picks the price each selection is judged at (the best latest price among the
bookmakers the caller can bet with) and fills the proto message.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from betting.frames import PSEUDO_BOOKMAKER_PREFIX
from betting.odds import recommend_all
from serve.errors import BadRequest, FieldViolation
from serve.models import ModelInfo
from serve.online import QuoteTable
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import MarketRequest

TIERS = {"A": pb.SIGNAL_TIER_A, "B": pb.SIGNAL_TIER_B, "C": pb.SIGNAL_TIER_C, "D": pb.SIGNAL_TIER_D}
#: Probabilities are kept inside (0, 1] for the odds functions.
_P_FLOOR = 1e-12


def best_prices(
    quotes: pd.DataFrame | QuoteTable,
    market_key: str,
    selections: list[str],
    bookmakers: tuple[str, ...],
) -> dict[str, tuple[float, str]]:
    """Per selection, the best of the bookmakers' latest prices: ``(price, bookmaker)``.

    Args:
        quotes: the event's prices (``market_key``, ``selection``, ``bookmaker``,
            ``captured_at``, ``price``).
        market_key: the market.
        selections: its selection names.
        bookmakers: the bookmakers the caller bets with; empty: every bookmaker but the
            ``market_`` aggregates.
    """
    table = quotes if isinstance(quotes, QuoteTable) else QuoteTable.of(quotes)
    market_keys, names, books = table.market_keys, table.selections, table.bookmakers
    times, prices = table.captured_at, table.prices
    latest: dict[tuple[str, str], tuple[pd.Timestamp, float]] = {}
    for i in np.flatnonzero(market_keys == market_key):
        bookmaker = str(books[i])
        if bookmakers and bookmaker not in bookmakers:
            continue
        if not bookmakers and bookmaker.startswith(PSEUDO_BOOKMAKER_PREFIX):
            continue
        kept = latest.get((names[i], bookmaker))
        if kept is None or times[i] >= kept[0]:
            latest[(names[i], bookmaker)] = (times[i], float(prices[i]))
    best: dict[str, tuple[float, str]] = {}
    for (selection, bookmaker), (_, price) in latest.items():
        if selection in selections and (selection not in best or price > best[selection][0]):
            best[selection] = (price, bookmaker)
    return best


def _missing_price(item: MarketRequest, missing: list[str]) -> BadRequest:
    where = f"market {item.market_key!r}"
    if item.staking.bookmakers:
        books = list(item.staking.bookmakers)
        reason = f"no price from {books} for selection(s) {missing} of {where}"
        return BadRequest([FieldViolation("staking.bookmakers", reason)])
    if item.raw is None:
        reason = f"the stored event has no bookmaker price for selection(s) {missing} of {where}"
        return BadRequest([FieldViolation("event_key", reason)])
    reason = f"selection(s) {missing} of {where} have no price from a bookmaker (only aggregates)"
    return BadRequest([FieldViolation("raw_event.markets", reason)])


def prediction_response(
    item: MarketRequest,
    rows: pd.DataFrame,
    quotes: pd.DataFrame | QuoteTable,
    probabilities: np.ndarray,
    model: ModelInfo,
    now: datetime,
) -> pb.GetPredictionResponse:
    """GetPrediction's answer for one market.

    Args:
        item: the checked request.
        rows: the market's selection rows, in selection order.
        quotes: the event's prices.
        probabilities: the model's probability of each row.
        model: the version that gave them.
        now: when the prediction was made.

    Raises:
        BadRequest: a selection has no price from the allowed bookmakers.
    """
    selections = rows["selection"].astype(str).tolist()
    prices = best_prices(quotes, item.market_key, selections, item.staking.bookmakers)
    missing = [s for s in selections if s not in prices]
    if missing:
        raise _missing_price(item, missing)
    staking = item.staking
    odds = np.array([prices[s][0] for s in selections], dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), _P_FLOOR, 1.0)
    recs = recommend_all(
        p, odds, bankroll=1.0, kelly_multiplier=staking.kelly_multiplier,
        min_edge=staking.min_edge,
    )  # fmt: skip
    fractions = recs.stake
    if staking.max_stake_fraction is not None:
        fractions = np.minimum(fractions, staking.max_stake_fraction)
    answers = []
    for i, selection in enumerate(selections):
        fraction = float(fractions[i])
        answer = pb.SelectionPrediction(
            selection=selection, probability=float(recs.probability[i]),
            fair_odds=float(recs.fair_odds[i]), odds=float(recs.odds[i]),
            bookmaker=prices[selection][1], expected_value=float(recs.expected_value[i]),
            kelly_fraction=float(recs.kelly_fraction[i]), stake_fraction=fraction,
            minimum_acceptable_odds=float(recs.minimum_acceptable_odds[i]),
            tier=TIERS[str(recs.tier[i])], is_bet=fraction > 0.0,
        )  # fmt: skip
        if staking.bankroll is not None:
            answer.recommended_stake = fraction * staking.bankroll
        answers.append(answer)
    response = pb.GetPredictionResponse(
        event_key=item.event_key,
        market_key=item.market_key,
        selections=answers,
        model=model_info(model),
    )
    response.predicted_at.FromDatetime(now)
    return response


def model_info(model: ModelInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=model.name,
        version=str(model.version),
        alias=model.alias,
        feature_schema_version=model.feature_schema_version,
    )


def add_agent_stake(
    response: pb.GetPredictionResponse,
    selection: str,
    fraction: float,
    agent: ModelInfo | None,
    bankroll: float | None,
) -> None:
    """Put the strategy agent's stake into an answer: ``fraction`` of the bankroll on
    ``selection``, 0 on the others, in currency units too when the request gave a bankroll."""
    for answer in response.selections:
        share = fraction if answer.selection == selection else 0.0
        answer.agent_stake_fraction = share
        if bankroll is not None:
            answer.agent_stake = share * bankroll
    if agent is not None:
        response.agent_model.CopyFrom(model_info(agent))
