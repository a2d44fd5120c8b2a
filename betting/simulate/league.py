"""Fixtures of team leagues (football, moneyline sports): double round robins on match days.

A season of one league is a double round robin: every team meets every other once at home and
once away, one game per team per match day, and match days fall on distinct dates, so a team
never plays twice on one day. Large runs play several leagues of the same size side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from betting.simulate.calendar import SEASON_DAYS, kickoffs, match_day_offsets


def double_round_robin(n_teams: int) -> np.ndarray:
    """Fixtures of a double round robin by the circle method.

    Returns:
        Integer array of shape ``(rounds, games, 2)``: home and away team index of each game.
        With an odd number of teams one team rests each round.
    """
    m = n_teams + n_teams % 2
    rounds = []
    for r in range(m - 1):
        order = np.concatenate(([0], np.roll(np.arange(1, m), r)))
        pairs = np.stack([order[: m // 2], order[::-1][: m // 2]], axis=1)
        flip = (np.arange(m // 2) + r) % 2 == 1
        pairs[flip] = pairs[flip, ::-1]
        rounds.append(pairs[(pairs < n_teams).all(axis=1)])
    first_half = np.stack(rounds)
    return np.concatenate([first_half, first_half[:, :, ::-1]])


def games_per_league(n_teams: int) -> int:
    """Games in one season of one league of ``n_teams``."""
    return n_teams * (n_teams - 1)


def leagues_needed(n_teams: int, events_per_season: int | None) -> int:
    """How many leagues of ``n_teams`` it takes to play ``events_per_season`` games."""
    if events_per_season is None:
        return 1
    return max(1, math.ceil(events_per_season / games_per_league(n_teams)))


@dataclass
class LeagueSeason:
    """The games of one season of one or more leagues, in kick-off order."""

    league: np.ndarray
    """League index of each game."""
    round: np.ndarray
    """Match day (round) index of each game."""
    home: np.ndarray
    """Home team index within its league."""
    away: np.ndarray
    """Away team index within its league."""
    starts_at: np.ndarray
    """Kick-off, ``datetime64[m]`` in UTC."""

    @property
    def rounds(self) -> int:
        """Match days in the season (including any cut off by a game limit)."""
        return int(self.round.max()) + 1 if len(self.round) else 0


def league_season(
    year: int,
    n_teams: int,
    n_leagues: int,
    kickoff_minutes: tuple[int, ...],
    rng: np.random.Generator,
    limit: int | None = None,
) -> LeagueSeason:
    """Draw the fixtures and kick-offs of one season.

    Teams get a fresh random place in the fixture grid each season and league. Games of a match
    day are spread over two consecutive days when match days are at least three days apart.

    Args:
        year: the year the season opens.
        n_teams: teams per league.
        n_leagues: leagues played side by side.
        kickoff_minutes: the kick-off slots, in minutes after midnight UTC.
        rng: the simulation's random generator.
        limit: keep only the first ``limit`` games of the schedule (match day order).
    """
    base = double_round_robin(n_teams)
    n_rounds, n_games, _ = base.shape
    slots = np.tile(np.arange(n_teams), (n_leagues, 1))
    perms = rng.permuted(slots, axis=1)
    teams = perms[np.arange(n_leagues)[None, :, None, None], base[:, None, :, :]]
    shape = (n_rounds, n_leagues, n_games)
    rounds = np.broadcast_to(np.arange(n_rounds)[:, None, None], shape).ravel()
    leagues = np.broadcast_to(np.arange(n_leagues)[None, :, None], shape).ravel()
    home, away = teams[..., 0].ravel(), teams[..., 1].ravel()
    if limit is not None:
        rounds, leagues, home, away = rounds[:limit], leagues[:limit], home[:limit], away[:limit]
    days = match_day_offsets(n_rounds, what=f"a league of {n_teams} teams")[rounds]
    if SEASON_DAYS // n_rounds >= 3:
        days = days + rng.integers(0, 2, size=len(days))
    minutes = rng.choice(np.asarray(kickoff_minutes), size=len(days))
    starts = kickoffs(year, days, minutes)
    order = np.argsort(starts, kind="stable")
    return LeagueSeason(leagues[order], rounds[order], home[order], away[order], starts[order])
