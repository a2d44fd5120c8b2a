"""market_winners: scores decide markets exactly as the simulator and the import settle them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from betting.batch import EventBatch
from betting.errors import InvalidInput
from betting.ingest.football_data import read_football_data
from betting.settlement import MAX_SCORE, market_winners
from betting.simulate import simulate

FD = Path(__file__).resolve().parents[1] / "fixtures" / "football-data"


def _winners_by_score(batch: EventBatch, *, named: bool = True) -> pd.DataFrame:
    """The results market_winners derives from every scored event of ``batch``."""
    rows = []
    markets = batch.markets.groupby("event_key")
    selections = batch.selections.groupby("event_key")
    for event in batch.events.itertuples(index=False):
        if pd.isna(event.home_score):
            continue
        sides = {"home": event.home, "away": event.away} if named else {}
        won = market_winners(
            markets.get_group(event.event_key), selections.get_group(event.event_key),
            int(event.home_score), int(event.away_score), **sides,
        )  # fmt: skip
        rows += [(event.event_key, k, v) for k, v in won.items()]
    return pd.DataFrame(rows, columns=["event_key", "market_key", "winner"])


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    def order(f: pd.DataFrame) -> pd.DataFrame:
        f = f[["event_key", "market_key", "winner"]].astype(str)
        return f.sort_values(["event_key", "market_key"], ignore_index=True)

    pd.testing.assert_frame_equal(order(a), order(b))


@pytest.mark.parametrize("named", [True, False])
def test_simulated_football_and_moneyline_scores_give_the_simulated_results(named: bool) -> None:
    for sport in ("football", "moneyline"):
        season = simulate(sport, 1, seed=11, teams=8)
        _same(_winners_by_score(season, named=named), season.results)


def test_real_football_data_scores_give_the_imported_results() -> None:
    season = read_football_data(FD / "E0_2024-25.csv")
    assert len(season.results) > 380  # 1x2 and total:2.5 of every match
    _same(_winners_by_score(season), season.results)


def _match(types: list[tuple[str, str, float | None]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    markets = pd.DataFrame(
        [("e", key, kind, line) for key, kind, line in types],
        columns=["event_key", "market_key", "type", "line"],
    )
    rows = []
    for key, kind, _line in types:
        if kind == "1x2":
            names = [("home", "H"), ("draw", None), ("away", "A")]
        elif kind == "moneyline":
            names = [("home", "H"), ("away", "A")]
        elif kind == "total":
            names = [("over", None), ("under", None)]
        else:
            names = [("H -1.5", "H"), ("A +1.5", "A")]
        rows += [("e", key, n, i, p) for i, (n, p) in enumerate(names)]
    selections = pd.DataFrame(
        rows, columns=["event_key", "market_key", "name", "position", "participant"]
    )
    return markets, selections


MARKETS = [
    ("1x2", "1x2", None),
    ("moneyline", "moneyline", None),
    ("total:2.5", "total", 2.5),
    ("total:3", "total", 3.0),
    ("spread:-1.5", "spread", -1.5),
]


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ((2, 1), {"1x2": "home", "moneyline": "home", "total:2.5": "over"}),
        ((0, 2), {"1x2": "away", "moneyline": "away", "total:2.5": "under", "total:3": "under"}),
        ((2, 2), {"1x2": "draw", "total:2.5": "over", "total:3": "over"}),
        ((0, 0), {"1x2": "draw", "total:2.5": "under", "total:3": "under"}),
    ],
)
def test_each_market_type(score: tuple[int, int], expected: dict[str, str]) -> None:
    markets, selections = _match(MARKETS)
    assert market_winners(markets, selections, *score, home="H", away="A") == expected
    assert market_winners(markets, selections, *score) == expected  # sides by position


def test_a_push_ties_and_spreads_decide_nothing() -> None:
    markets, selections = _match(MARKETS)
    won = market_winners(markets, selections, 2, 1)
    assert "total:3" not in won and "spread:-1.5" not in won  # 3 goals on a line of 3: a push
    assert "moneyline" not in market_winners(markets, selections, 1, 1)


@pytest.mark.parametrize(
    ("home_score", "away_score", "field"),
    [
        (-1, 0, "home_score"),
        (0, MAX_SCORE + 1, "away_score"),
        (1.5, 0, "home_score"),
        (True, 0, "home_score"),
        (0, "2", "away_score"),
    ],
)
def test_bad_scores_are_refused_by_name(home_score: object, away_score: object, field: str) -> None:
    markets, selections = _match(MARKETS)
    with pytest.raises(InvalidInput, match=field):
        market_winners(markets, selections, home_score, away_score)  # type: ignore[arg-type]


def test_numpy_integer_scores_are_accepted() -> None:
    markets, selections = _match(MARKETS[:1])
    assert market_winners(markets, selections, np.int64(3), np.int64(0)) == {"1x2": "home"}
