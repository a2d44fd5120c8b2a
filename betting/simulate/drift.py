"""Latent strengths that wander over time: a stationary AR(1) random walk.

Each step (a match day or a race day) pulls a strength towards zero by ``step_persistence`` and
adds noise sized so the spread across teams stays ``spread``; the break between seasons is a
bigger step (``season_persistence``), as squads and form change over the summer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Drift:
    """How a latent strength drifts."""

    spread: float
    """Standard deviation of the strength across teams (the stationary spread)."""
    step_persistence: float
    """Correlation of a strength between one match day and the next."""
    season_persistence: float
    """Correlation of a strength across the break between two seasons."""

    def start(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Initial strengths drawn from the stationary distribution."""
        return rng.normal(0.0, self.spread, size=shape)

    def _step(self, state: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, self.spread * np.sqrt(1.0 - rho * rho), size=state.shape)
        return rho * state + noise

    def new_season(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Strengths after the break between two seasons."""
        return self._step(state, self.season_persistence, rng)

    def path(self, state: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
        """Strengths on each of ``steps`` consecutive days, shape ``(steps, *state.shape)``.

        The first entry is one step on from ``state``; the last is the state to carry on from.
        """
        rho = self.step_persistence
        noise = rng.normal(0.0, self.spread * np.sqrt(1.0 - rho * rho), (steps, *state.shape))
        out = np.empty_like(noise)
        current = state
        for t in range(steps):
            current = rho * current + noise[t]
            out[t] = current
        return out
