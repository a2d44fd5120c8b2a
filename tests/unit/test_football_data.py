"""football-data.co.uk parsing on real files and on small crafted ones; no database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from betting.errors import ImportRejected, InvalidInput
from betting.frames import selection_frame
from betting.ingest.football_data import (
    CREDIT,
    odds_columns,
    read_football_data,
    season_of,
)

FD = Path(__file__).resolve().parents[1] / "fixtures" / "football-data"
HEADER = (
    "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A,PSCH,PSCD,PSCA,P>2.5,P<2.5"
)
GOOD_ROWS = [
    "E0,10/08/2024,12:30,Arsenal,Wolves,2,0,H,1.3,5.5,10,1.28,5.9,11.5,1.6,2.4",
    "E0,10/08/2024,15:00,Everton,Brighton,0,3,A,2.6,3.4,2.7,2.5,3.5,2.9,1.8,2.05",
    "E0,11/08/2024,16:30,Chelsea,Man City,0,2,A,4.2,4.0,1.8,4.4,4.1,1.75,1.7,2.2",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "E0.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def rejected(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ImportRejected) as info:
        read_football_data(path)
    assert info.value.source == str(path)
    return [(p.location, p.reason) for p in info.value.problems]


def price(
    batch, event_key: str, market: str, selection: str, bookmaker: str, kind: str
) -> pd.Series:
    odds = batch.odds
    row = odds[
        (odds.event_key == event_key) & (odds.market_key == market) & (odds.selection == selection)
        & (odds.bookmaker == bookmaker) & (odds.kind == kind)
    ]  # fmt: skip
    assert len(row) == 1, (event_key, market, selection, bookmaker, kind)
    return row.iloc[0]


@pytest.mark.parametrize(
    ("name", "rows", "season"),
    [
        ("E0_2003-04.csv", 335, "2003-04"),
        ("D1_2003-04.csv", 194, "2003-04"),
        ("E0_2014-15.csv", 380, "2014-15"),
        ("E0_2024-25.csv", 380, "2024-25"),
    ],
)
def test_real_files_parse_into_one_event_per_row(name: str, rows: int, season: str) -> None:
    batch = read_football_data(FD / name)
    batch.validate()
    assert len(batch.events) == rows
    assert set(batch.events.season) == {season}
    assert set(batch.events.source) == {"football-data"} and set(batch.events.sport) == {"football"}
    assert (batch.markets.market_key == "1x2").sum() == rows
    assert len(batch.results[batch.results.market_key == "1x2"]) == rows
    assert (batch.odds.price > 1).all()
    assert batch.events.starts_at.dt.tz is not None


def test_a_known_match_of_a_resaved_season(tmp_path: Path) -> None:
    batch = read_football_data(FD / "E0_2014-15.csv")  # goals written 2.0, BbMx_2_5 columns
    key = "fd:E0:2014-08-16:Arsenal:Crystal Palace"
    event = batch.events.set_index("event_key").loc[key]
    assert (event.home_score, event.away_score) == (2, 1)
    assert isinstance(event.home_score, int)
    assert event.starts_at == pd.Timestamp("2014-08-16 15:00", tz="UTC")  # no Time column
    close = price(batch, key, "1x2", "home", "pinnacle", "close")
    assert close.price == 1.29 and close.captured_at == event.starts_at
    pre = price(batch, key, "1x2", "home", "pinnacle", "pre_close")
    assert pre.price == 1.26 and pre.captured_at == pd.Timestamp("2014-08-14 12:00", tz="UTC")
    assert price(batch, key, "total:2.5", "over", "market_max", "pre_close").price == 1.77
    assert price(batch, key, "total:2.5", "under", "market_avg", "pre_close").price == 2.1
    results = batch.results[batch.results.event_key == key].set_index("market_key").winner
    assert results.to_dict() == {"1x2": "home", "total:2.5": "over"}
    home = selection_frame(batch)
    home = home[(home.event_key == key) & (home.selection == "home")].iloc[0]
    assert home.won == 1.0 and home.participant == "Arsenal"
    assert home.close_ref == 1.29 and home.pre_close_best == 1.3  # BbMxH


def test_the_oldest_season_has_no_pinnacle_and_keeps_whole_number_odds() -> None:
    batch = read_football_data(FD / "E0_2003-04.csv")  # dd/mm/yy, 335 of 380 matches
    assert "pinnacle" not in set(batch.odds.bookmaker)
    assert set(batch.odds.kind) == {"pre_close"}
    key = "fd:E0:2003-08-16:Arsenal:Everton"
    assert price(batch, key, "1x2", "away", "bet365", "pre_close").price == 8.0
    assert price(batch, key, "total:2.5", "over", "gamebookers", "pre_close").price == 1.75
    frame = selection_frame(batch)
    assert frame.close_ref.isna().all() and frame.pre_close_ref.isna().all()
    assert (frame.pre_close_n > 0).all()


def test_trailing_empty_columns_and_missing_over_under_prices() -> None:
    batch = read_football_data(FD / "D1_2003-04.csv")  # Unnamed__54..58, sparse GB_2_5
    assert not any(b.startswith("unnamed") for b in batch.odds.bookmaker)
    table = pd.read_csv(FD / "D1_2003-04.csv")
    with_ou = table[["GB_2_5", "GB_2_5_1", "B365_2_5", "B365_2_5_1"]].notna().any(axis=1).sum()
    assert (batch.markets.market_key == "total:2.5").sum() == with_ou < len(table)
    assert len(batch.results[batch.results.market_key == "total:2.5"]) == with_ou


def test_a_file_with_a_byte_order_mark_and_kickoff_times() -> None:
    batch = read_football_data(FD / "E0_2024-25.csv")
    key = "fd:E0:2024-08-16:Man United:Fulham"
    event = batch.events.set_index("event_key").loc[key]
    assert event.starts_at == pd.Timestamp("2024-08-16 20:00", tz="UTC")
    assert price(batch, key, "1x2", "home", "pinnacle", "close").price == 1.65
    assert price(batch, key, "total:2.5", "over", "pinnacle", "pre_close").price == 1.56
    assert price(batch, key, "total:2.5", "under", "pinnacle", "close").price == 2.38
    assert price(batch, key, "1x2", "draw", "1xbet", "close").price == 4.15
    late = batch.odds[batch.odds.event_key == "fd:E0:2025-05-25:Southampton:Arsenal"]
    assert "betwin" not in set(late.bookmaker) and "pinnacle" in set(late.bookmaker)


def test_a_glitched_real_price_rejects_the_file_unless_dropped() -> None:
    path = FD / "D1_2019-20.csv"
    assert rejected(path) == [("line 261", "AvgC_2_5 price '0.42' is not above 1")]
    batch = read_football_data(path, on_invalid_price="drop")
    assert len(batch.events) == 306
    key = "fd:D1:2020-06-01:FC Koln:RB Leipzig"
    odds = batch.odds[(batch.odds.event_key == key) & (batch.odds.market_key == "total:2.5")]
    avg_close = odds[(odds.bookmaker == "market_avg") & (odds.kind == "close")]
    assert list(avg_close.selection) == ["under"]
    assert price(batch, key, "total:2.5", "over", "pinnacle", "close").price == 1.47


def test_one_bad_row_among_good_ones_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = "E0,17/08/2024,15:00,Fulham,Leicester,1,1,H,2.0,3.5,3.9,2.1,3.4,3.8,1.9,1.9"
    path = write_csv(tmp_path, [*GOOD_ROWS[:2], bad, GOOD_ROWS[2]])
    assert rejected(path) == [("line 4", "FTR 'H' contradicts the score 1-1")]


def test_every_bad_row_is_listed_in_line_order(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[0],
        "E0,10/08/2024,15:00,,Brighton,0,3,A,2.6,3.4,2.7,,,,,",
        "E0,31/02/2024,15:00,Leeds,Hull,1,0,H,,,,,,,,",
        "E0,12/08/2024,25:00,Leeds,Hull,x,0,H,,,,,,,,",
        "E0,13/08/2024,,Leeds,Hull,1,0,H,1.0,abc,3,,,,,",
        "",
        ",,,,,,,,,,,,,,,",
        "E0,14/08/2024,,Leeds,Hull,1,,,,,,,,,,",
        GOOD_ROWS[0],
        "E0,15/08/2024,,Leeds,Hull,1,0,X,,,,,,,,,,extra",
    ]
    assert rejected(write_csv(tmp_path, rows)) == [
        ("line 3", "HomeTeam is empty"),
        ("line 4", "Date '31/02/2024' is not dd/mm/yy or dd/mm/yyyy"),
        ("line 5", "Time '25:00' is not hh:mm"),
        ("line 5", "FTHG 'x' is not a number of goals"),
        ("line 6", "B365D price 'abc' is not a number"),
        ("line 6", "B365H price '1.0' is not above 1"),
        ("line 9", "incomplete result: FTHG='1', FTAG='', FTR=''"),
        ("line 10", "same Div, date and teams as line 2"),
        ("line 11", "18 fields but the header has 16"),
        ("line 11", "FTR 'X' is not H, D or A"),
    ]


def test_missing_columns_and_empty_files_are_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD_ROWS, header=HEADER.replace("FTR,", "Result,"))
    assert rejected(path) == [("line 1", "missing column(s) FTR")]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert rejected(empty) == [("line 1", "the file is empty")]


def test_both_date_formats_blank_rows_and_default_kickoff(tmp_path: Path) -> None:
    header = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A"
    rows = [
        "D1,09/08/19,Arsenal,Wolves,2.0,0.0,H,1.3,5.5,10.0",
        ",,,,,,,,,",
        "",
        "D1,10/08/2019,Everton,Brighton,1,1,D,2.6,3.4,2.7,,,",
    ]
    batch = read_football_data(write_csv(tmp_path, rows, header=header))
    assert list(batch.events.starts_at) == [
        pd.Timestamp("2019-08-09 15:00", tz="UTC"),
        pd.Timestamp("2019-08-10 15:00", tz="UTC"),
    ]
    assert list(batch.events.home_score) == [2, 1]
    assert batch.markets.market_key.tolist() == ["1x2", "1x2"]  # no over/under columns


def test_unplayed_matches_are_kept_unsettled(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], "E0,17/08/2024,,Fulham,Leicester,,,,2.0,3.5,3.9,,,,1.9,1.9"]
    batch = read_football_data(write_csv(tmp_path, rows))
    batch.validate()
    fixture = batch.events.set_index("event_key").loc["fd:E0:2024-08-17:Fulham:Leicester"]
    assert fixture.home_score is None and fixture.starts_at.hour == 15
    assert set(batch.results.event_key) == {"fd:E0:2024-08-10:Arsenal:Wolves"}
    assert (batch.markets.event_key == fixture.name).sum() == 2


def test_a_season_running_into_july_keeps_one_season(tmp_path: Path) -> None:
    rows = [
        "E0,17/08/2019,Arsenal,Wolves,2,0,H",
        "E0,26/07/2020,Everton,Brighton,0,3,A",
    ]
    header = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR"
    batch = read_football_data(write_csv(tmp_path, rows, header=header))
    assert set(batch.events.season) == {"2019-20"}
    assert season_of(pd.Timestamp("2020-07-01")) == "2020-21"
    assert season_of(pd.Timestamp("2000-06-30")) == "1999-00"


def test_windows_1252_team_names(tmp_path: Path) -> None:
    path = tmp_path / "D1.csv"
    text = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR\nD1,17/08/2019,Köln,Düsseldorf,1,2,A\n"
    path.write_bytes(text.encode("cp1252"))
    assert read_football_data(path).events.home.tolist() == ["Köln"]


def test_odds_columns_are_mapped_to_bookmakers_and_kinds() -> None:
    header = [
        "Div", "HS", "HTHG", "AHh", "B365AHH", "B365AHA", "PSH", "PSD", "PSA", "PSCH", "PSCD",
        "PSCA", "XYH", "XYD", "XYA", "XYCH", "XYCD", "XYCA", "BbMx_2_5", "BbMx_2_5_1",
        "PC>2.5", "Avg<2.5", "GB>2.5",
    ]  # fmt: skip
    mapped = {
        c.column: (c.market_key, c.selection, c.bookmaker, c.kind.value)
        for c in odds_columns(header)
    }
    assert mapped == {
        "PSH": ("1x2", "home", "pinnacle", "pre_close"),
        "PSD": ("1x2", "draw", "pinnacle", "pre_close"),
        "PSA": ("1x2", "away", "pinnacle", "pre_close"),
        "PSCH": ("1x2", "home", "pinnacle", "close"),
        "PSCD": ("1x2", "draw", "pinnacle", "close"),
        "PSCA": ("1x2", "away", "pinnacle", "close"),
        "XYH": ("1x2", "home", "xy", "pre_close"),
        "XYD": ("1x2", "draw", "xy", "pre_close"),
        "XYA": ("1x2", "away", "xy", "pre_close"),
        "XYCH": ("1x2", "home", "xy", "close"),
        "XYCD": ("1x2", "draw", "xy", "close"),
        "XYCA": ("1x2", "away", "xy", "close"),
        "BbMx_2_5": ("total:2.5", "over", "market_max", "pre_close"),
        "BbMx_2_5_1": ("total:2.5", "under", "market_max", "pre_close"),
        "PC>2.5": ("total:2.5", "over", "pinnacle", "close"),
        "Avg<2.5": ("total:2.5", "under", "market_avg", "pre_close"),
        "GB>2.5": ("total:2.5", "over", "gamebookers", "pre_close"),
    }


def test_the_fixtures_credit_their_source() -> None:
    assert CREDIT in (FD / "README.md").read_text(encoding="utf-8")


def test_unreadable_files_and_unknown_options_are_refused(tmp_path: Path) -> None:
    [(location, reason)] = rejected(tmp_path / "missing.csv")
    assert location == "file" and reason.startswith("cannot read")
    with pytest.raises(InvalidInput, match="'skip'"):
        read_football_data(write_csv(tmp_path, GOOD_ROWS), on_invalid_price="skip")  # type: ignore[arg-type]
