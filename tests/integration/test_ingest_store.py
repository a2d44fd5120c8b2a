"""Ingestion into a real store: football-data CSVs and the Go backtester's export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from betting.errors import ImportRejected
from betting.frames import selection_frame
from betting.ingest.backtest_export import (
    EXAMPLE_PATH,
    MLExport,
    import_backtest_export,
    load_backtest_export,
    parse_backtest_export,
)
from betting.ingest.football_data import import_football_data
from betting.schema import (
    BacktestBet,
    BacktestRun,
    Base,
    EquityPoint,
    Event,
    Market,
    OddsSnapshot,
    Result,
    Selection,
)
from betting.store import load_batch

FD = Path(__file__).resolve().parents[1] / "fixtures" / "football-data"


def counts(session: Session, *models: type[Base]) -> dict[str, int]:
    return {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0 for m in models
    }


EVENT_TABLES = (Event, Market, Selection, Result, OddsSnapshot)
RUN_TABLES = (BacktestRun, BacktestBet, EquityPoint)


def one_selection(frame: pd.DataFrame, event_key: str, selection: str) -> pd.Series:
    rows = frame[(frame.event_key == event_key) & (frame.selection == selection)]
    assert len(rows) == 1
    return rows.iloc[0]


def first_rows(source: Path, tmp_path: Path, rows: int) -> Path:
    """A copy of ``source`` cut after its first ``rows`` matches (bytes kept, BOM included)."""
    lines = source.read_bytes().splitlines(keepends=True)
    path = tmp_path / source.name
    path.write_bytes(b"".join(lines[: rows + 1]))
    return path


def test_a_real_season_round_trips_through_the_store(session: Session) -> None:
    report = import_football_data(session, FD / "E0_2014-15.csv")  # re-saved, PSCH, BbMx_2_5
    assert report.rows_read == report.events_added == 380 and report.results_added == 760
    assert counts(session, OddsSnapshot)["odds_snapshots"] == report.odds_added > 0
    frame = selection_frame(load_batch(session, competition="E0", seasons=["2014-15"]))
    assert frame.event_key.nunique() == 380
    key = "fd:E0:2014-08-16:Arsenal:Crystal Palace"
    home = one_selection(frame, key, "home")
    assert home.won == 1.0 and (home.home_score, home.away_score) == (2.0, 1.0)
    assert home.starts_at == pd.Timestamp("2014-08-16 15:00", tz="UTC")
    assert home.close_ref == pytest.approx(1.29) and home.pre_close_ref == pytest.approx(1.26)
    assert home.pre_close_best == pytest.approx(1.3)  # BbMxH, the market maximum
    assert home.pre_close_n == 8  # market_max and market_avg are not bookmakers
    away = one_selection(frame, key, "away")
    assert away.won == 0.0 and away.close_ref == pytest.approx(12.75)
    over = frame[(frame.event_key == key) & (frame.market_key == "total:2.5")]
    assert over.set_index("selection").won.to_dict() == {"over": 1.0, "under": 0.0}


def test_a_season_without_pinnacle(session: Session) -> None:
    report = import_football_data(session, FD / "E0_2003-04.csv")  # 335 of the 380 matches
    assert report.events_added == 335
    frame = selection_frame(load_batch(session, seasons=["2003-04"]))
    assert frame.close_ref.isna().all() and frame.pre_close_ref.isna().all()
    one_x_two = frame[frame.market_key == "1x2"]
    # 7 bookmakers, but one match lacks Ladbrokes: the match is kept without those prices
    assert one_x_two.pre_close_n.value_counts().to_dict() == {7.0: 3 * 334, 6.0: 3}
    away = one_selection(frame, "fd:E0:2003-08-16:Arsenal:Everton", "away")
    assert away.won == 0.0 and away.pre_close_best == pytest.approx(8.0)


def test_a_file_with_a_byte_order_mark_round_trips(session: Session, tmp_path: Path) -> None:
    report = import_football_data(session, first_rows(FD / "E0_2024-25.csv", tmp_path, 30))
    assert report.events_added == 30
    frame = selection_frame(load_batch(session, competition="E0"))
    home = one_selection(frame, "fd:E0:2024-08-16:Man United:Fulham", "home")
    assert home.participant == "Man United" and home.close_ref == pytest.approx(1.65)
    assert home.starts_at == pd.Timestamp("2024-08-16 20:00", tz="UTC")


def test_importing_twice_adds_nothing(session: Session) -> None:
    first = import_football_data(session, FD / "D1_2003-04.csv")  # trailing empty columns
    assert first.events_added == 194
    before = counts(session, *EVENT_TABLES)
    again = import_football_data(session, FD / "D1_2003-04.csv")
    assert (again.events_added, again.events_skipped, again.odds_added) == (0, 194, 0)
    assert counts(session, *EVENT_TABLES) == before


def test_a_bad_row_rejects_the_whole_file_and_writes_nothing(
    session: Session, tmp_path: Path
) -> None:
    import_football_data(session, first_rows(FD / "E0_2024-25.csv", tmp_path, 10))
    before = counts(session, *EVENT_TABLES)
    lines = (FD / "E0_2003-04.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[10].split(",")
    fields[6] = {"H": "A", "D": "H", "A": "D"}[fields[6]]  # line 11: FTR contradicts the goals
    lines[10] = ",".join(fields)
    path = tmp_path / "E0_2003-04.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_football_data(session, path)
    [problem] = info.value.problems
    assert problem.location == "line 11"
    assert problem.reason.startswith(f"FTR '{fields[6]}' contradicts the score")
    assert str(path) in str(info.value)
    assert counts(session, *EVENT_TABLES) == before


def test_dropping_glitched_prices_is_reported(session: Session, tmp_path: Path) -> None:
    lines = (FD / "D1_2019-20.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "D1_2019-20.csv"
    path.write_text("\n".join([lines[0], *lines[255:262]]) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_football_data(session, path)
    assert [p.location for p in info.value.problems] == ["line 7"]  # line 261 of the season
    assert counts(session, Event)["events"] == 0
    report = import_football_data(session, path, on_invalid_price="drop")
    assert report.events_added == 7 and report.prices_dropped == 1


# --- the Go backtester's export ----------------------------------------------------------


def example_document() -> dict[str, Any]:
    return json.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))


def problems_of(document: dict[str, Any] | str) -> list[tuple[str, str]]:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(ImportRejected) as info:
        parse_backtest_export(text, source="export.json")
    assert all(p.source == "export.json" for p in info.value.problems)
    return [(p.location, p.reason) for p in info.value.problems]


def test_the_example_export_loads() -> None:
    export = load_backtest_export(EXAMPLE_PATH)
    assert export.summary.total_bets == len(export.bets) == 20
    assert export.metrics.monte_carlo is not None and export.metrics.walk_forward is not None
    assert export.summary.final_capital == export.equity_curve[-1].equity
    profit = sum(b.pnl for b in export.bets)
    assert profit == pytest.approx(export.summary.profit, abs=0.01)
    assert all(b.event_ref.startswith("fd:E0:") for b in export.bets)


def test_the_example_export_imports_once(session: Session) -> None:
    report = import_backtest_export(session, EXAMPLE_PATH)
    assert (report.runs_added, report.bets_added, report.equity_points_added) == (1, 20, 21)
    before = counts(session, *RUN_TABLES)
    again = import_backtest_export(session, load_backtest_export(EXAMPLE_PATH))
    assert (again.runs_added, again.runs_skipped, again.bets_added) == (0, 1, 0)
    assert counts(session, *RUN_TABLES) == before
    run = session.scalars(select(BacktestRun)).one()
    assert (run.strategy_id, run.strategy_version) == ("value-pinnacle-fair", "1.2.0")
    assert run.period_start == pd.Timestamp("2023-08-09", tz="UTC")
    assert run.metrics["walk_forward"]["windows"][0]["bets"] == 3
    assert run.parameters["reference_bookmaker"] == "pinnacle"
    assert [b.seq for b in run.bets] == list(range(20)) and run.bets[0].outcome == "lost"
    assert run.equity_curve[-1].equity == run.final_capital


def test_a_new_version_of_a_strategy_is_a_new_run(session: Session) -> None:
    import_backtest_export(session, EXAMPLE_PATH)
    document = example_document()
    document["strategy"]["version"] = "1.3.0"
    report = import_backtest_export(session, MLExport.model_validate(document))
    assert report.runs_added == 1 and counts(session, BacktestRun)["backtest_runs"] == 2


def test_a_bad_field_is_reported_with_its_path() -> None:
    document = example_document()
    document["bets"][3]["odds"] = 0.95
    document["bets"][5]["outcome"] = "cancelled"
    del document["summary"]["initial_capital"]
    assert problems_of(document) == [
        ("summary.initial_capital", "Field required"),
        ("bets[3].odds", "Input should be greater than 1 (got 0.95)"),
        ("bets[5].outcome", "Input should be 'won', 'lost', 'void' or 'pending' (got 'cancelled')"),
    ]


def test_unknown_fields_and_inconsistent_values_are_refused() -> None:
    document = example_document()
    document["bets"][0]["stake_amount"] = 10.0
    document["summary"]["period_end"] = "2023-01-01T00:00:00Z"
    document["equity_curve"][2]["timestamp"] = "2023-08-01T00:00:00Z"
    document["schema_version"] = "2.0"
    problems = dict(problems_of(document))
    assert problems["bets[0].stake_amount"].startswith("Extra inputs are not permitted")
    assert problems["summary"].startswith("period_end 2023-01-01T00:00:00+00:00 is before")
    assert problems["equity_curve"] == "equity_curve[2] is earlier than equity_curve[1]"
    assert problems["schema_version"].startswith("schema_version '2.0' is not 1.0 compatible")


def test_naive_timestamps_and_non_finite_numbers_are_refused() -> None:
    document = example_document()
    document["exported_at"] = "2024-06-03T09:15:42"
    text = json.dumps(document).replace('"pnl": -6.91', '"pnl": NaN', 1)
    problems = dict(problems_of(text))
    assert problems["exported_at"].startswith("Input should have timezone info")
    assert problems["bets[0].pnl"].startswith("Input should be a finite number")


def test_malformed_json_is_rejected_with_its_line(tmp_path: Path, session: Session) -> None:
    text = EXAMPLE_PATH.read_text(encoding="utf-8").replace(
        '"total_bets": 20,', '"total_bets": 20', 1
    )
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if '"total_bets": 20' in t) + 1
    with pytest.raises(ImportRejected) as info:
        import_backtest_export(session, path)
    [problem] = info.value.problems
    assert problem.source == str(path) and problem.location.startswith(f"line {line} column")
    assert problem.reason.startswith("malformed JSON: Expecting ',' delimiter")
    assert counts(session, *RUN_TABLES) == dict.fromkeys(
        ["backtest_runs", "backtest_bets", "equity_points"], 0
    )
