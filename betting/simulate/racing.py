"""Simulated horse racing: a Plackett-Luce race over drifting runner abilities.

A pool of runners carries over from season to season; each runner's ability (log strength)
drifts from race day to race day. A race draws 6-14 runners from the pool (a runner runs at most
once a day) and finishes in the Plackett-Luce order of their strengths, so the true win
probability of runner ``i`` is exactly ``exp(a_i) / sum_j exp(a_j)``; the winner is drawn by the
Gumbel-max trick, which samples the same law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.schema import MarketType
from betting.simulate.assemble import MarketBlock, SeasonEvents, season_batch
from betting.simulate.bookmakers import BookmakerPanel
from betting.simulate.calendar import SEASON_DAYS, kickoffs, match_day_offsets, season_label
from betting.simulate.drift import Drift

SPORT = "racing"
COMPETITION = "SIM-RACE"
MIN_RUNNERS, MAX_RUNNERS = 6, 14
DEFAULT_RACES = 300
DEFAULT_RACES_PER_DAY = 6
#: First race of a day at 13:00 UTC, then one every 35 minutes (closer on very busy days).
FIRST_RACE_MINUTE, MINUTES_BETWEEN_RACES = 780, 35
#: Minutes from the first race to the latest start, so a race day stays within its UTC date.
RACING_WINDOW_MINUTES = 660

_FIRST = (
    "Silver", "Golden", "Midnight", "Royal", "Northern", "Crimson", "Lucky", "Iron", "Wild",
    "Quiet", "Bold", "Swift", "Dancing", "Stormy", "Noble", "Little", "Highland", "Desert",
    "Velvet", "Copper", "Misty", "Brave", "Distant", "Scarlet", "Hidden", "Winter", "Summer",
    "Blue", "Black", "Lone",
)  # fmt: skip
_SECOND = (
    "Arrow", "Comet", "Legend", "Harbour", "Thunder", "Echo", "Falcon", "Spirit", "Dream",
    "Rebel", "Voyager", "Lantern", "Meadow", "Knight", "Tempest", "Whisper", "Crown", "River",
    "Flame", "Shadow", "Banner", "Promise", "Rocket", "Orchid", "Warrior", "Charm", "Dancer",
    "Pilot", "Quest", "Star",
)  # fmt: skip


@dataclass(frozen=True)
class RacingModel:
    """The truth of simulated racing."""

    ability: Drift = field(default_factory=lambda: Drift(0.8, 0.995, 0.9))
    """How runner abilities (log Plackett-Luce strengths) drift from race day to race day."""


def runner_names(count: int) -> np.ndarray:
    """``count`` distinct runner names, e.g. ``"Silver Arrow"``, ``"Silver Arrow II"``."""
    per_round = len(_FIRST) * len(_SECOND)
    names = []
    for i in range(count):
        base = f"{_FIRST[i % len(_FIRST)]} {_SECOND[(i // len(_FIRST)) % len(_SECOND)]}"
        generation = i // per_round
        names.append(base if generation == 0 else f"{base} {generation + 1}")
    return np.array(names, dtype=object)


def _races_per_day(races: int, pool: int) -> int:
    per_day = max(math.ceil(races / SEASON_DAYS), min(DEFAULT_RACES_PER_DAY, pool // MAX_RUNNERS))
    if per_day > RACING_WINDOW_MINUTES:
        raise InvalidInput(f"events_per_season: {races} races do not fit in one season")
    if per_day * MAX_RUNNERS > pool:
        raise InvalidInput(
            f"teams: {races} races a season need a pool of at least "
            f"{per_day * MAX_RUNNERS} runners (a runner races once a day), got {pool}"
        )
    return per_day


def _season(
    year: int,
    races: int,
    per_day: int,
    ability: np.ndarray,
    model: RacingModel,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw one season of races; return the abilities to carry on with and the race arrays."""
    pool = ability.shape[0]
    days = math.ceil(races / per_day)
    path = model.ability.path(ability, days, rng)  # (days, pool)
    entrants = rng.permuted(np.tile(np.arange(pool), (days, 1)), axis=1)
    entrants = entrants[:, : per_day * MAX_RUNNERS].reshape(days * per_day, MAX_RUNNERS)[:races]
    day = np.repeat(np.arange(days), per_day)[:races]
    field_size = rng.integers(MIN_RUNNERS, MAX_RUNNERS + 1, size=races)
    present = np.arange(MAX_RUNNERS)[None, :] < field_size[:, None]
    strength = np.where(present, path[day[:, None], entrants], -np.inf)
    probs = np.exp(strength - strength.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    winner = np.argmax(strength + rng.gumbel(size=strength.shape), axis=1)
    slot = np.arange(races) - np.repeat(np.arange(days) * per_day, per_day)[:races]
    gap = max(1, min(MINUTES_BETWEEN_RACES, RACING_WINDOW_MINUTES // per_day))
    minutes = FIRST_RACE_MINUTE + gap * slot
    starts = kickoffs(year, match_day_offsets(days, what="a racing season")[day], minutes)
    race = {
        "entrants": entrants,
        "present": present,
        "probs": probs,
        "winner": winner,
        "starts": starts,
    }
    return path[-1], race


def simulate_racing(
    seasons: int,
    seed: int,
    panel: BookmakerPanel,
    rng: np.random.Generator,
    *,
    teams: int | None = None,
    start_year: int = 2020,
    events_per_season: int | None = None,
    model: RacingModel | None = None,
) -> EventBatch:
    """Simulate ``seasons`` racing seasons of ``events_per_season`` races (300 by default).

    ``teams`` is the size of the runner pool (by default twice what one race day needs).
    """
    model = model or RacingModel()
    races = events_per_season or DEFAULT_RACES
    min_per_day = math.ceil(races / SEASON_DAYS)
    pool = teams or 2 * MAX_RUNNERS * max(min_per_day, DEFAULT_RACES_PER_DAY)
    per_day = _races_per_day(races, pool)
    names = runner_names(pool)
    ability = model.ability.start((pool,), rng)
    batches = []
    for s in range(seasons):
        year = start_year + s
        if s:
            ability = model.ability.new_season(ability, rng)
        ability, race = _season(year, races, per_day, ability, model, rng)
        runners = names[race["entrants"]]
        runners[~race["present"]] = None
        block = MarketBlock(
            market_key="win",
            market_type=MarketType.WIN,
            line=None,
            event_index=np.arange(races),
            names=runners,
            participants=runners,
            true_probability=race["probs"],
            winner=race["winner"],
            present=race["present"],
        )
        label = season_label(year)
        events = SeasonEvents(
            SPORT, label, np.full(races, COMPETITION, dtype=object), race["starts"]
        )
        batches.append(season_batch(events, [block], panel, rng, f"sim:{SPORT}:s{seed}:{label}"))
    return EventBatch.concat(batches)
