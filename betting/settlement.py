"""Settling a stored event: its score, the winner of each market, and the settlement log.

:func:`market_winners` is the rule that turns a final score into winning selections, named as
the simulator (:mod:`betting.simulate.football`, :mod:`betting.simulate.moneyline`) and the
football-data import name them: ``1x2`` (the home participant's selection on a home win, the
participant-less ``draw`` on a draw, the away participant's otherwise), ``moneyline`` (no winner
on a tie) and ``total:<line>`` (``over`` above the line, ``under`` below, no winner on a push).
Other markets are not decided by a score (no market of the project defines how a ``spread``
line settles): their winners are given by name (races: ``{"win": "Runner"}``).

:func:`settle_event` writes a stored event's result, in the caller's transaction, with its
:class:`~betting.schema.Settlement` row, the log the online feature state follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from numbers import Integral

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from betting.errors import InvalidInput, NotFound
from betting.schema import Event, Market, MarketType, Result, Selection
from betting.store import log_settlements

#: Largest score a result may carry.
MAX_SCORE = 999
#: Names of the selections of a total market, as the simulator and the import write them.
OVER, UNDER = "over", "under"


def check_score(name: str, value: object) -> int:
    """``value`` as a score: an integer from 0 to :data:`MAX_SCORE`.

    Raises:
        InvalidInput: naming ``name`` and the bad value.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInput(f"{name}: must be an integer from 0 to {MAX_SCORE}, got {value!r}")
    if not 0 <= int(value) <= MAX_SCORE:
        raise InvalidInput(f"{name}: must be an integer from 0 to {MAX_SCORE}, got {value!r}")
    return int(value)


def _side_selections(
    rows: pd.DataFrame, home: str | None, away: str | None
) -> tuple[str | None, str | None, str | None]:
    """The names of a two-sided market's home, draw and away selections (None where absent).

    Home and away are the selections of those participants when the names are given, else the
    first and last selection by position; the draw is the one participant-less selection left.
    """
    rows = rows.sort_values("position")
    names = rows["name"].astype(str).tolist()
    who = [p if isinstance(p, str) else None for p in rows["participant"]]

    def of(participant: str | None, fallback: int) -> str | None:
        if participant is not None:
            hits = [n for n, p in zip(names, who, strict=True) if p == participant]
            return hits[0] if len(hits) == 1 else None
        return names[fallback] if names else None

    home_name, away_name = of(home, 0), of(away, -1)
    draws = [
        n for n, p in zip(names, who, strict=True) if p is None and n not in (home_name, away_name)
    ]
    return home_name, (draws[0] if len(draws) == 1 else None), away_name


def market_winners(
    markets: pd.DataFrame,
    selections: pd.DataFrame,
    home_score: int,
    away_score: int,
    *,
    home: str | None = None,
    away: str | None = None,
) -> dict[str, str]:
    """The winning selection of each market of one event that its final score decides.

    Args:
        markets: the event's markets, :class:`~betting.batch.EventBatch` layout (``market_key``,
            ``type``, ``line``).
        selections: their selections (``market_key``, ``name``, ``position``, ``participant``).
        home_score, away_score: the final score.
        home, away: the event's participants; None takes them from each market's selections by
            position (first is home, last is away).

    Returns:
        Market key to the winning selection's name. Markets a score does not decide (races,
        spreads, a tied moneyline, a total on its line) are left out.

    Raises:
        InvalidInput: a score that is not an integer from 0 to :data:`MAX_SCORE`.
    """
    home_score = check_score("home_score", home_score)
    away_score = check_score("away_score", away_score)
    goals = home_score + away_score
    winners: dict[str, str] = {}
    for market in markets.itertuples(index=False):
        rows = selections[selections["market_key"] == market.market_key]
        winner: str | None = None
        if market.type in (MarketType.MATCH_ODDS, MarketType.MONEYLINE):
            home_name, draw_name, away_name = _side_selections(rows, home, away)
            if home_score > away_score:
                winner = home_name
            elif home_score < away_score:
                winner = away_name
            elif market.type == MarketType.MATCH_ODDS:
                winner = draw_name
        elif market.type == MarketType.TOTAL and pd.notna(market.line) and goals != market.line:
            wanted = OVER if goals > market.line else UNDER
            names = set(rows["name"].astype(str))
            winner = wanted if wanted in names else None
        if winner is not None:
            winners[str(market.market_key)] = winner
    return winners


@dataclass(frozen=True)
class SettleReport:
    """What :func:`settle_event` did."""

    event_key: str
    sport: str
    starts_at: datetime
    markets_settled: int
    """Result rows written (0 when the event was already settled)."""
    already_settled: bool
    """The event was settled before, with this result; nothing was written."""


def _event_markets(session: Session, event_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored markets (with ``id``) and selections (with ``id``) of one event."""
    markets = pd.DataFrame(
        session.execute(
            select(Market.key, Market.type, Market.line, Market.id).where(
                Market.event_id == event_id
            )
        ).all(),
        columns=["market_key", "type", "line", "id"],
    )
    selections = pd.DataFrame(
        session.execute(
            select(Market.key, Selection.name, Selection.position, Selection.participant,
                   Selection.id)
            .join(Selection.market).where(Market.event_id == event_id)
        ).all(),
        columns=["market_key", "name", "position", "participant", "id"],
    )  # fmt: skip
    return markets, selections


def _check_winners(
    event_key: str,
    winners: dict[str, str],
    markets: pd.DataFrame,
    selections: pd.DataFrame,
    from_score: dict[str, str],
) -> None:
    """Refuse explicit winners of unknown markets or selections, or contradicting the score."""
    known_markets = sorted(markets["market_key"])
    for market_key, name in winners.items():
        if market_key not in known_markets:
            raise InvalidInput(
                f"winners.{market_key}: event {event_key!r} has no market {market_key!r} "
                f"(it has {known_markets})"
            )
        known = selections.loc[selections["market_key"] == market_key, "name"].tolist()
        if name not in known:
            raise InvalidInput(
                f"winners.{market_key}: {name!r} is not a selection of event {event_key!r} "
                f"market {market_key!r} (it has {known})"
            )
        if from_score.get(market_key, name) != name:
            raise InvalidInput(
                f"winners.{market_key}: {name!r} contradicts the score, which makes "
                f"{from_score[market_key]!r} the winner"
            )


def _stored_winners(session: Session, event_id: int) -> dict[str, str]:
    """Market key to the stored winning selection's name, for one event."""
    rows = session.execute(
        select(Market.key, Selection.name)
        .select_from(Result)
        .join(Market, Market.id == Result.market_id)
        .join(Selection, Selection.id == Result.winning_selection_id)
        .where(Market.event_id == event_id)
    ).all()
    return {str(k): str(v) for k, v in rows}


def settle_event(
    session: Session,
    event_key: str,
    *,
    home_score: int | None = None,
    away_score: int | None = None,
    winners: dict[str, str] | None = None,
) -> SettleReport:
    """Settle one stored event in the caller's transaction (flushes, never commits).

    The scores (two-participant events) decide the markets :func:`market_winners` knows;
    ``winners`` names the winning selection of the others (races: ``{"win": "Runner"}``), or of
    the same markets, where they must agree with the score. Writes the scores, one
    :class:`~betting.schema.Result` per decided market and one
    :class:`~betting.schema.Settlement` row (:func:`betting.store.log_settlements`); scores
    that decide no market (a tied moneyline) still settle the event. An event settled before
    answers ``already_settled`` and writes nothing when the result is the same (scores equal
    where both are known, winners equal on every market both name).

    Raises:
        NotFound: no stored event has the key.
        InvalidInput: a bad or lone score, scores for an event without two sides, an unknown
            market or selection, a winner contradicting the score, nothing to settle, or a
            result other than the stored one (results are not rewritten). Nothing is written.
    """
    # Locked (PostgreSQL) so that two settlements of one event run one after the other.
    event = session.scalar(select(Event).where(Event.key == event_key).with_for_update())
    if event is None:
        raise NotFound(f"no stored event has key {event_key!r}")
    if (home_score is None) != (away_score is None):
        raise InvalidInput(
            f"event {event_key!r}: give home_score and away_score together, got "
            f"home_score={home_score!r}, away_score={away_score!r}"
        )
    winners = dict(winners or {})
    if home_score is None and not winners:
        raise InvalidInput(f"event {event_key!r}: give home_score and away_score, or winners")
    markets, selections = _event_markets(session, event.id)
    from_score: dict[str, str] = {}
    if home_score is not None and away_score is not None:
        home_score = check_score("home_score", home_score)
        away_score = check_score("away_score", away_score)
        if event.home is None or event.away is None:
            raise InvalidInput(f"event {event_key!r} has no home and away side: give winners")
        from_score = market_winners(
            markets, selections, home_score, away_score, home=event.home, away=event.away
        )
    _check_winners(event_key, winners, markets, selections, from_score)
    wanted = from_score | winners

    stored = _stored_winners(session, event.id)
    if stored or event.home_score is not None or event.away_score is not None:
        stored_score = (event.home_score, event.away_score)
        same_score = home_score is None or stored_score in ((None, None), (home_score, away_score))
        if not (same_score and all(stored.get(k, v) == v for k, v in wanted.items())):
            raise InvalidInput(
                f"event {event_key!r} is already settled (score {stored_score}, winners "
                f"{stored}); results are not rewritten, got score ({home_score}, {away_score}), "
                f"winners {wanted}"
            )
        return SettleReport(event_key, event.sport, event.starts_at, 0, already_settled=True)

    if home_score is not None:
        event.home_score, event.away_score = home_score, away_score
    market_id = dict(zip(markets["market_key"], markets["id"], strict=True))
    selection_id = dict(
        zip(zip(selections["market_key"], selections["name"], strict=True), selections["id"],
            strict=True)
    )  # fmt: skip
    if wanted:
        session.execute(
            insert(Result.__table__),  # type: ignore[arg-type]
            [
                {"market_id": int(market_id[k]), "winning_selection_id": int(selection_id[k, v])}
                for k, v in wanted.items()
            ],
        )
    session.flush()
    log_settlements(session, [event.id])
    return SettleReport(event_key, event.sport, event.starts_at, len(wanted), already_settled=False)
