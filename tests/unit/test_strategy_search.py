"""The candidate search of betting.strategy_search on a table with known probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from betting.errors import InvalidInput
from betting.strategy_search import (
    MIN_MARKETS,
    candidate_grid,
    meets,
    search,
    unmet_constraints,
)


def _table(markets: int, seed: int = 0) -> pd.DataFrame:
    """Two-way markets priced 2.0 each side; the model knows the true probability 0.6 / 0.4."""
    rng = np.random.default_rng(seed)
    home_won = rng.random(markets) < 0.6
    starts = pd.date_range("2024-01-01", periods=markets, freq="D", tz="UTC")
    return pd.DataFrame({
        "market": np.repeat([f"m{i:03d}" for i in range(markets)], 2),
        "starts_at": np.repeat(starts, 2),
        "p": np.tile([0.6, 0.4], markets),
        "odds": np.full(2 * markets, 2.0),
        "won": np.column_stack([home_won, ~home_won]).ravel().astype(float),
    })  # fmt: skip


def test_grid_stays_inside_the_constraints() -> None:
    grid = candidate_grid(min_odds=1.5, max_odds=6.0, max_stake_fraction=0.02)
    assert {c.max_stake_fraction for c in grid} == {0.01, 0.02}
    assert {(c.min_odds, c.max_odds) for c in grid} == {(1.5, 6.0), (1.5, 4.0)}
    assert {c.max_stake_fraction for c in candidate_grid(max_stake_fraction=0.005)} == {0.005}
    assert {c.max_odds for c in candidate_grid(max_odds=3.0)} == {3.0}


def test_search_bets_the_edge_and_stakes_by_kelly() -> None:
    judged = search(_table(200), candidate_grid())
    # edge 0.6 * 2 - 1 = 0.2 on every home side: every candidate bets every market, staking
    # min(multiplier * Kelly 0.2, cap)
    assert len(judged) == len(candidate_grid())
    for j in judged:
        assert j.summary.total_bets == 200
        stake = min(j.candidate.kelly_multiplier * 0.2, j.candidate.max_stake_fraction)
        assert j.risk_profile.volatility == pytest.approx(stake, rel=0.01)
        wf = j.metrics.walk_forward
        assert wf is not None and [w.bets for w in wf.windows] == [50, 50]
        assert j.early_summary.total_bets == 100
        assert j.metrics.monte_carlo is not None and 0.0 <= j.score.score <= 1.0
    assert sum(j.chosen_early for j in judged) >= len(judged) // 2
    # an odds ceiling under every price leaves nothing to bet
    assert search(_table(200), candidate_grid(max_odds=1.9)) == []
    with pytest.raises(InvalidInput, match=f"at least {MIN_MARKETS}"):
        search(_table(MIN_MARKETS - 1), candidate_grid())


def test_unmet_constraints_name_each_constraint() -> None:
    judged = search(_table(60), candidate_grid())
    assert not any(meets(j, max_drawdown=1e-6, min_bets=1000) for j in judged)
    drawdown, bets = unmet_constraints(judged, max_drawdown=1e-6, min_bets=1000)
    assert drawdown.startswith("max_drawdown 1e-06: the best candidate's 95th-percentile")
    assert bets == "min_bets 1000: the most bets a candidate placed is 60"
    assert unmet_constraints([], max_drawdown=0.1, min_bets=1) == [
        "min_bets: no candidate placed a single bet on the settled markets"
    ]
