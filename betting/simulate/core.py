"""The simulator's entry point: :func:`simulate` and its :class:`SimulationConfig`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.simulate.bookmakers import BookmakerPanel, draw_bookmakers
from betting.simulate.calendar import LAST_YEAR
from betting.simulate.football import simulate_football
from betting.simulate.moneyline import simulate_moneyline
from betting.simulate.racing import simulate_racing

logger = logging.getLogger(__name__)

SportSimulator = Callable[..., EventBatch]

#: One simulator per sport; a new sport is a new module registered here.
SIMULATORS: dict[str, SportSimulator] = {
    "football": simulate_football,
    "racing": simulate_racing,
    "moneyline": simulate_moneyline,
}
SPORTS = tuple(SIMULATORS)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Same config, same batch."""

    sport: str
    """One of :data:`SPORTS`: ``football``, ``racing`` or ``moneyline``."""
    seasons: int
    """Number of consecutive seasons."""
    seed: int
    """Seed of the one random generator of the run; also part of every event key."""
    teams: int | None = None
    """Teams per league (football 20, moneyline 30 by default) or runner pool size (racing)."""
    bookmakers: int = 4
    """Number of bookmakers, ``book_1`` .. ``book_<n>``."""
    start_year: int = 2020
    """Year the first season opens (season ``"2020-21"`` for 2020)."""
    events_per_season: int | None = None
    """Games or races per season. Football and moneyline: enough leagues of ``teams`` play side
    by side and the season is cut at this many games (default: one full league). Racing: races
    per season (default 300)."""

    def __post_init__(self) -> None:
        if self.sport not in SIMULATORS:
            raise InvalidInput(f"sport: {self.sport!r} is not one of {list(SPORTS)}")
        if self.seasons < 1:
            raise InvalidInput(f"seasons: need at least one season, got {self.seasons}")
        if self.bookmakers < 1:
            raise InvalidInput(f"bookmakers: need at least one bookmaker, got {self.bookmakers}")
        if self.teams is not None and self.teams < 2:
            raise InvalidInput(f"teams: need at least two, got {self.teams}")
        if self.events_per_season is not None and self.events_per_season < 1:
            raise InvalidInput(
                f"events_per_season: need at least one event, got {self.events_per_season}"
            )
        if not 1900 <= self.start_year <= LAST_YEAR - self.seasons:
            raise InvalidInput(
                f"start_year: {self.start_year} with {self.seasons} seasons is outside "
                f"1900..{LAST_YEAR}"
            )


def run_simulation(config: SimulationConfig) -> EventBatch:
    """Simulate what ``config`` describes; see :func:`simulate`."""
    rng = np.random.default_rng(config.seed)
    panel: BookmakerPanel = draw_bookmakers(config.bookmakers, rng)
    logger.info("simulating %s", asdict(config))
    batch = SIMULATORS[config.sport](
        config.seasons,
        config.seed,
        panel,
        rng,
        teams=config.teams,
        start_year=config.start_year,
        events_per_season=config.events_per_season,
    )
    logger.info("simulated %d %s events", len(batch), config.sport)
    return batch


def simulate(
    sport: str,
    seasons: int,
    seed: int,
    *,
    teams: int | None = None,
    bookmakers: int = 4,
    start_year: int = 2020,
    events_per_season: int | None = None,
) -> EventBatch:
    """Simulate seasons of ``sport`` with a known truth, as an :class:`EventBatch`.

    Every selection carries its ``true_probability``; every market is settled; each bookmaker
    quotes an opening (a few days before the start) and a closing price (at the start) for every
    selection. The same arguments always give the same batch.

    Event keys are ``sim:{sport}:s{seed}:{season}:{n:06d}``, ``n`` counting a season's events in
    start order: two runs with the same seed but other settings produce the same keys for
    different events, so keep one setting per seed in one store.

    Raises:
        InvalidInput: for an unknown sport or an impossible setting (named in the message).
    """
    config = SimulationConfig(
        sport=sport,
        seasons=seasons,
        seed=seed,
        teams=teams,
        bookmakers=bookmakers,
        start_year=start_year,
        events_per_season=events_per_season,
    )
    return run_simulation(config)
