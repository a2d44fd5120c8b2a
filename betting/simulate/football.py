"""Simulated football: Poisson goals from drifting attack and defence strengths.

Each team has an attack and a defence strength (log scale) that drift from match day to match
day. In a game the home side scores ``Poisson(exp(base + home_advantage + attack_home -
defence_away))`` goals and the away side ``Poisson(exp(base + attack_away - defence_home))``. The
true 1X2 probabilities are summed exactly over the grid of scores, the true over/under
probabilities come from the Poisson total; results are the drawn goals.
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

SPORT = "football"
DEFAULT_TEAMS = 20
#: Kick-off slots in minutes after midnight UTC (12:30, 15:00, 17:30, 20:00).
KICKOFF_MINUTES = (750, 900, 1050, 1200)
MATCH_ODDS_NAMES = ("home", "draw", "away")
TOTAL_NAMES = ("over", "under")


@dataclass(frozen=True)
class FootballModel:
    """The truth of simulated football."""

    base_log_rate: float = float(np.log(1.25))
    """Log of the goal rate of an average away side against an average defence."""
    home_advantage: float = 0.16
    """Added to the home side's log goal rate."""
    attack: Drift = field(default_factory=lambda: Drift(0.2, 0.995, 0.85))
    """How attack strengths drift."""
    defence: Drift = field(default_factory=lambda: Drift(0.2, 0.995, 0.85))
    """How defence strengths drift."""
    max_goals: int = 12
    """Largest score per side in the grid the 1X2 probabilities are summed over."""
    total_line: float = 2.5
    """Line of the over/under goals market."""


def poisson_pmf(rates: np.ndarray, max_count: int) -> np.ndarray:
    """``P(X = k)`` for ``k = 0..max_count`` and each rate, shape ``(len(rates), max_count+1)``."""
    k = np.arange(max_count + 1)
    log_factorial = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, max_count + 1)))))
    return np.exp(k * np.log(rates)[:, None] - rates[:, None] - log_factorial)


def match_odds_probabilities(
    home_rate: np.ndarray, away_rate: np.ndarray, max_goals: int
) -> np.ndarray:
    """True home/draw/away probabilities of two independent Poisson scores, shape ``(n, 3)``.

    Summed over the score grid up to ``max_goals`` per side and renormalised (the mass beyond
    is negligible for football rates).
    """
    home = poisson_pmf(home_rate, max_goals)
    away = poisson_pmf(away_rate, max_goals)
    away_below = np.cumsum(away, axis=1) - away  # P(away < k)
    home_below = np.cumsum(home, axis=1) - home
    probs = np.stack(
        [
            (home * away_below).sum(axis=1),
            (home * away).sum(axis=1),
            (away * home_below).sum(axis=1),
        ],
        axis=1,
    )
    return probs / probs.sum(axis=1, keepdims=True)


def over_under_probabilities(total_rate: np.ndarray, line: float) -> np.ndarray:
    """True over/under probabilities of a Poisson total against a half-goal line, ``(n, 2)``."""
    under = poisson_pmf(total_rate, int(np.floor(line))).sum(axis=1)
    return np.stack([1.0 - under, under], axis=1)


def _blocks(
    home: np.ndarray,
    away: np.ndarray,
    rates: tuple[np.ndarray, np.ndarray],
    goals: tuple[np.ndarray, np.ndarray],
    model: FootballModel,
) -> list[MarketBlock]:
    n = len(home)
    index = np.arange(n)
    participants = np.empty((n, 3), dtype=object)
    participants[:, 0], participants[:, 2] = home, away
    outcome = np.where(goals[0] > goals[1], 0, np.where(goals[0] == goals[1], 1, 2))
    match_odds = MarketBlock(
        market_key="1x2",
        market_type=MarketType.MATCH_ODDS,
        line=None,
        event_index=index,
        names=np.broadcast_to(np.array(MATCH_ODDS_NAMES, dtype=object), (n, 3)),
        participants=participants,
        true_probability=match_odds_probabilities(*rates, model.max_goals),
        winner=outcome,
    )
    line = model.total_line
    total = MarketBlock(
        market_key=f"total:{line:g}",
        market_type=MarketType.TOTAL,
        line=line,
        event_index=index,
        names=np.broadcast_to(np.array(TOTAL_NAMES, dtype=object), (n, 2)),
        participants=np.full((n, 2), None, dtype=object),
        true_probability=over_under_probabilities(rates[0] + rates[1], line),
        winner=np.where(goals[0] + goals[1] > line, 0, 1),
    )
    return [match_odds, total]


def simulate_football(
    seasons: int,
    seed: int,
    panel: BookmakerPanel,
    rng: np.random.Generator,
    *,
    teams: int | None = None,
    start_year: int = 2020,
    events_per_season: int | None = None,
    model: FootballModel | None = None,
) -> EventBatch:
    """Simulate ``seasons`` football seasons of one or more leagues (``SIM-FB1``, ``SIM-FB2``...).

    A season is a double round robin of ``teams`` teams (380 games for 20); with
    ``events_per_season`` enough leagues play side by side, cut at that many games.
    """
    model = model or FootballModel()
    n_teams = teams or DEFAULT_TEAMS
    n_leagues = leagues_needed(n_teams, events_per_season)
    competitions = np.array([f"SIM-FB{i + 1}" for i in range(n_leagues)], dtype=object)
    names = np.array(
        [[f"{c} Team {t + 1:02d}" for t in range(n_teams)] for c in competitions], dtype=object
    )
    attack = model.attack.start((n_leagues, n_teams), rng)
    defence = model.defence.start((n_leagues, n_teams), rng)
    batches = []
    for s in range(seasons):
        year = start_year + s
        if s:
            attack = model.attack.new_season(attack, rng)
            defence = model.defence.new_season(defence, rng)
        games = league_season(year, n_teams, n_leagues, KICKOFF_MINUTES, rng, events_per_season)
        attack_path = model.attack.path(attack, games.rounds, rng)
        defence_path = model.defence.path(defence, games.rounds, rng)
        attack, defence = attack_path[-1], defence_path[-1]
        r, lg = games.round, games.league
        attack_home, attack_away = attack_path[r, lg, games.home], attack_path[r, lg, games.away]
        defence_home, defence_away = (
            defence_path[r, lg, games.home],
            defence_path[r, lg, games.away],
        )
        base = model.base_log_rate
        home_rate = np.exp(base + model.home_advantage + attack_home - defence_away)
        away_rate = np.exp(base + attack_away - defence_home)
        goals = (rng.poisson(home_rate), rng.poisson(away_rate))
        home, away = names[lg, games.home], names[lg, games.away]
        label = season_label(year)
        events = SeasonEvents(
            SPORT, label, competitions[lg], games.starts_at, home, away, goals[0], goals[1]
        )
        blocks = _blocks(home, away, (home_rate, away_rate), goals, model)
        batches.append(season_batch(events, blocks, panel, rng, f"sim:{SPORT}:s{seed}:{label}"))
    return EventBatch.concat(batches)
