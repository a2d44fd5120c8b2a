"""Simulated two-way games (basketball-like): a logistic margin over drifting team ratings.

Each team has a rating in points that drifts from match day to match day. The home margin is
``home_rating - away_rating + home_advantage + scale * L`` with ``L`` standard logistic, so the
true probability of a home win is ``sigmoid((home_rating - away_rating + home_advantage) /
scale)``; the game is won by whoever the drawn margin favours, and scores are built around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from betting.batch import EventBatch
from betting.schema import MarketType
from betting.simulate.assemble import MarketBlock, SeasonEvents, season_batch
from betting.simulate.bookmakers import BookmakerPanel
from betting.simulate.calendar import season_label
from betting.simulate.drift import Drift
from betting.simulate.league import league_season, leagues_needed

SPORT = "moneyline"
DEFAULT_TEAMS = 30
#: Tip-off slots in minutes after midnight UTC (00:00, 01:30 and 23:00).
TIPOFF_MINUTES = (0, 90, 1380)
SELECTION_NAMES = ("home", "away")


@dataclass(frozen=True)
class MoneylineModel:
    """The truth of simulated two-way games."""

    rating: Drift = field(default_factory=lambda: Drift(5.0, 0.995, 0.85))
    """How team ratings (in points) drift."""
    home_advantage: float = 2.5
    """Points added to the home side's expected margin."""
    scale: float = 7.0
    """Scale of the logistic noise on the margin, in points."""
    mean_total: float = 215.0
    """Average combined score."""
    total_sd: float = 18.0
    """Standard deviation of the combined score."""


def home_win_probability(expected_margin: np.ndarray, scale: float) -> np.ndarray:
    """True probability that the home side wins, given its expected margin in points."""
    return 1.0 / (1.0 + np.exp(-expected_margin / scale))


def _scores(
    margin: np.ndarray, model: MoneylineModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Home and away points consistent with the drawn margin's winner."""
    gap = np.maximum(1, np.round(np.abs(margin))).astype(np.int64)
    total = np.round(rng.normal(model.mean_total, model.total_sd, size=len(margin)))
    total = np.maximum(total.astype(np.int64), gap + 120)
    loser = (total - gap) // 2
    winner = loser + gap
    home_won = margin > 0
    return np.where(home_won, winner, loser), np.where(home_won, loser, winner)


def simulate_moneyline(
    seasons: int,
    seed: int,
    panel: BookmakerPanel,
    rng: np.random.Generator,
    *,
    teams: int | None = None,
    start_year: int = 2020,
    events_per_season: int | None = None,
    model: MoneylineModel | None = None,
) -> EventBatch:
    """Simulate ``seasons`` seasons of two-way games in leagues ``SIM-ML1``, ``SIM-ML2``...

    A season is a double round robin of ``teams`` teams (870 games for 30); with
    ``events_per_season`` enough leagues play side by side, cut at that many games.
    """
    model = model or MoneylineModel()
    n_teams = teams or DEFAULT_TEAMS
    n_leagues = leagues_needed(n_teams, events_per_season)
    competitions = np.array([f"SIM-ML{i + 1}" for i in range(n_leagues)], dtype=object)
    names = np.array(
        [[f"{c} Team {t + 1:02d}" for t in range(n_teams)] for c in competitions], dtype=object
    )
    rating = model.rating.start((n_leagues, n_teams), rng)
    batches = []
    for s in range(seasons):
        year = start_year + s
        if s:
            rating = model.rating.new_season(rating, rng)
        games = league_season(year, n_teams, n_leagues, TIPOFF_MINUTES, rng, events_per_season)
        path = model.rating.path(rating, games.rounds, rng)
        rating = path[-1]
        r, lg = games.round, games.league
        expected = path[r, lg, games.home] - path[r, lg, games.away] + model.home_advantage
        p_home = home_win_probability(expected, model.scale)
        margin = expected + model.scale * rng.logistic(size=len(expected))
        home_score, away_score = _scores(margin, model, rng)
        home, away = names[lg, games.home], names[lg, games.away]
        n = len(home)
        block = MarketBlock(
            market_key="moneyline",
            market_type=MarketType.MONEYLINE,
            line=None,
            event_index=np.arange(n),
            names=np.broadcast_to(np.array(SELECTION_NAMES, dtype=object), (n, 2)),
            participants=np.stack([home, away], axis=1),
            true_probability=np.stack([p_home, 1.0 - p_home], axis=1),
            winner=np.where(margin > 0, 0, 1),
        )
        label = season_label(year)
        events = SeasonEvents(
            SPORT, label, competitions[lg], games.starts_at, home, away, home_score, away_score
        )
        batches.append(season_batch(events, [block], panel, rng, f"sim:{SPORT}:s{seed}:{label}"))
    return EventBatch.concat(batches)
