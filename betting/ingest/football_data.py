"""football-data.co.uk CSVs: match results and bookmaker odds, one file per league and season.

Data: football-data.co.uk (Joseph Buchdahl, free of charge; credit it wherever the data or
results derived from it appear).

Each row becomes an event (sport ``football``, source ``football-data``, competition = ``Div``,
key ``fd:{Div}:{yyyy-mm-dd}:{HomeTeam}:{AwayTeam}``) with a ``1x2`` market (home/draw/away)
and, where the row has over/under 2.5 goals prices, a ``total:2.5`` market (over/under),
settled from ``FTR`` and the goals. A row without ``FTHG``, ``FTAG`` and ``FTR`` is a match not
played yet: its event is kept unsettled.

Kickoff is ``Date`` + ``Time`` read as UTC (15:00 when the file has no ``Time``); football-data
gives UK local times, so kickoffs during British Summer Time are stored an hour late. The season
(``"2023-24"``) is the July-June season of each ``Div``'s earliest match in the file, so a season
that ran into July (E0 2019-20 ended on 26 July 2020) stays one season.

Odds columns are ``<prefix>H/D/A`` (1X2) and ``<prefix>>2.5`` / ``<prefix><2.5`` (over/under,
renamed ``<prefix>_2_5`` / ``<prefix>_2_5_1`` in re-saved files). A prefix ending in ``C`` is
the closing price of the bookmaker without the ``C`` (``PSCH``, ``B365C>2.5``, ``PC>2.5``): kind
``close``, captured at kickoff. The other prices are collected by football-data on the Tuesday
(midweek games) or Friday (weekend games) before the matches: kind ``pre_close``, stamped
:data:`PRE_CLOSE_DAYS_BEFORE` days before kickoff at 12:00 UTC. ``Max``/``BbMx`` and
``Avg``/``BbAv`` are the market maximum and average, stored as the pseudo-bookmakers
``market_max`` and ``market_avg``; unknown prefixes are stored lower-cased (:data:`BOOKMAKERS`
lists the known ones). Empty price cells are skipped; the match is kept.

Bad rows (empty team or Div, a date, time or goals that do not parse, FTR contradicting the
goals, a price that is not a number above 1, the same match twice, more fields than the header)
are all collected and reported together with their 1-based line (the header is line 1); blank
lines and rows of commas are skipped. A few real files carry glitched prices (``0`` or ``0.42``:
E0 2021-22, D1 2019-20, D1 2024-25); ``on_invalid_price="drop"`` imports them without those
prices. Files are read as UTF-8 (a byte-order mark is ignored) or, failing that, Windows-1252;
quoted fields spanning several lines are not expected in this format.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from betting.batch import EventBatch
from betting.errors import ImportRejected, InvalidInput, RowProblem
from betting.ingest import ImportReport
from betting.schema import MarketType, OddsKind
from betting.store import write_batch

logger = logging.getLogger(__name__)

SOURCE = "football-data"
SPORT = "football"
CREDIT = "Data: football-data.co.uk"
KEY_PREFIX = "fd"
DEFAULT_KICKOFF_HOUR = 15
PRE_CLOSE_DAYS_BEFORE = 2
PRE_CLOSE_HOUR = 12
TOTAL_LINE = 2.5
MATCH_ODDS_KEY = "1x2"
TOTAL_KEY = f"total:{TOTAL_LINE}"
REQUIRED_COLUMNS = ("Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR")

#: Column prefixes of football-data and the bookmaker names betml stores them under.
BOOKMAKERS: dict[str, str] = {
    "B365": "bet365",
    "BW": "betwin",
    "IW": "interwetten",
    "PS": "pinnacle",
    "P": "pinnacle",  # over/under and Asian handicap columns
    "WH": "william_hill",
    "VC": "vc_bet",
    "LB": "ladbrokes",
    "GB": "gamebookers",
    "BS": "blue_square",
    "SJ": "stan_james",
    "SB": "sportingbet",
    "SO": "sporting_odds",
    "SY": "stanleybet",
    "BF": "betfair",
    "BFD": "betfred",
    "BFE": "betfair_exchange",
    "BMGM": "betmgm",
    "BV": "betvictor",
    "CL": "coral",
    "1XB": "1xbet",
    "Max": "market_max",
    "BbMx": "market_max",
    "Avg": "market_avg",
    "BbAv": "market_avg",
}
_ONE_X_TWO = {"H": ("home", 0), "D": ("draw", 1), "A": ("away", 2)}
_OVER_UNDER = re.compile(r"^(?P<prefix>[A-Za-z0-9]+?)(?:(?P<sign>[<>])2\.5|_2_5(?P<under>_1)?)$")
_WINNER = {"H": "home", "D": "draw", "A": "away"}

OnInvalidPrice = Literal["reject", "drop"]


@dataclass(frozen=True)
class OddsColumn:
    """What one odds column of a football-data file holds."""

    column: str
    market_key: str
    selection: str
    bookmaker: str
    kind: OddsKind


def _bookmaker(prefix: str, prefixes: set[str]) -> tuple[str, OddsKind]:
    if prefix in BOOKMAKERS:
        return BOOKMAKERS[prefix], OddsKind.PRE_CLOSE
    base = prefix[:-1]
    if prefix.endswith("C") and base and (base in BOOKMAKERS or base in prefixes):
        return BOOKMAKERS.get(base, base.lower()), OddsKind.CLOSE
    return prefix.lower(), OddsKind.PRE_CLOSE


def odds_columns(header: list[str]) -> list[OddsColumn]:
    """The odds columns among ``header`` (1X2 triplets and over/under 2.5 pairs), in order."""
    names = set(header)
    triplets = {c[:-1] for c in header if c.endswith("H") and {c[:-1] + "D", c[:-1] + "A"} <= names}
    triplets.discard("")
    over_under = {c: m for c in header if (m := _OVER_UNDER.match(c))}
    prefixes = triplets | {m["prefix"] for m in over_under.values()}
    found: list[OddsColumn] = []
    for column in header:
        if column[:-1] in triplets and column[-1] in _ONE_X_TWO:
            book, kind = _bookmaker(column[:-1], prefixes)
            found.append(OddsColumn(column, MATCH_ODDS_KEY, _ONE_X_TWO[column[-1]][0], book, kind))
        elif match := over_under.get(column):
            book, kind = _bookmaker(match["prefix"], prefixes)
            under = match["sign"] == "<" or bool(match["under"])
            found.append(OddsColumn(column, TOTAL_KEY, "under" if under else "over", book, kind))
    unique: dict[tuple[str, str, str, OddsKind], OddsColumn] = {}
    for col in found:
        key = (col.market_key, col.selection, col.bookmaker, col.kind)
        if key in unique:
            logger.warning("column %s repeats %s; ignored", col.column, unique[key].column)
        else:
            unique[key] = col
    return list(unique.values())


def season_of(date: pd.Timestamp) -> str:
    """The July-June season a date falls in: 2023-08-12 and 2024-05-19 are both ``"2023-24"``."""
    start = date.year if date.month >= 7 else date.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def _decode(raw: bytes) -> str:
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _read_table(path: Path) -> tuple[pd.DataFrame, np.ndarray, dict[int, str]]:
    """The data rows as strings (one column per header name), their lines, and too-wide rows."""
    source = str(path)
    try:
        text = _decode(path.read_bytes())
    except OSError as e:
        raise ImportRejected(source, [RowProblem(source, "file", f"cannot read: {e}")]) from e
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        reason = f"missing column(s) {', '.join(missing)}" if header else "the file is empty"
        raise ImportRejected(source, [RowProblem(source, "line 1", reason)])
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    too_wide: dict[int, str] = {}
    for record in reader:
        if not any(field.strip() for field in record):
            continue  # blank lines and rows of commas
        if len(record) > width and any(field.strip() for field in record[width:]):
            too_wide[len(rows)] = f"{len(record)} fields but the header has {width}"
        rows.append([field.strip() for field in record[:width]] + [""] * (width - len(record)))
        lines.append(reader.line_num)
    first: dict[str, int] = {}
    for i, name in enumerate(header):
        if name:  # trailing empty columns have no name
            first.setdefault(name, i)
    table = pd.DataFrame(rows, columns=range(width), dtype=object)
    table = table[list(first.values())].set_axis(list(first), axis=1).astype(str)
    return table, np.asarray(lines, dtype=int), too_wide


class _Problems:
    """Row problems collected from boolean masks over the table."""

    def __init__(self, source: str, lines: np.ndarray) -> None:
        self.source = source
        self.lines = lines
        self.found: list[tuple[int, RowProblem]] = []

    def add_row(self, row: int, reason: str) -> None:
        line = int(self.lines[row])
        self.found.append((line, RowProblem(self.source, f"line {line}", reason)))

    def add(self, mask: pd.Series | np.ndarray, reason: str | Callable[[int], str]) -> None:
        """Record ``reason`` (or ``reason(row)``) for every row where ``mask`` holds."""
        for row in np.flatnonzero(np.asarray(mask, dtype=bool)):
            self.add_row(int(row), reason if isinstance(reason, str) else reason(int(row)))

    def sorted(self) -> list[RowProblem]:
        return [p for _, p in sorted(self.found, key=lambda found: found[0])]


def _parse_dates(text: pd.Series) -> pd.Series:
    year_digits = text.str.rsplit("/", n=1).str[-1].str.len()
    short = pd.to_datetime(text.where(year_digits == 2), format="%d/%m/%y", errors="coerce")
    long = pd.to_datetime(text.where(year_digits == 4), format="%d/%m/%Y", errors="coerce")
    return short.fillna(long)


def _kickoff_minutes(times: pd.Series | None, n: int) -> tuple[pd.Series, pd.Series]:
    """Minutes after midnight of each kickoff (15:00 when absent) and a mask of bad times."""
    default = float(DEFAULT_KICKOFF_HOUR * 60)
    if times is None:
        return pd.Series(np.full(n, default)), pd.Series(np.zeros(n, dtype=bool))
    parts = times.str.extract(r"^(\d{1,2}):(\d{2})(?::\d{2})?$").astype(float)
    ok = (parts[0] < 24) & (parts[1] < 60)
    minutes = (parts[0] * 60 + parts[1]).where(ok)
    return minutes.fillna(default), times.ne("") & ~ok


def _goals(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Goals as floats (NaN when empty) and a mask of values that are not goal counts."""
    value = pd.to_numeric(text.where(text.ne("")), errors="coerce")
    bad = text.ne("") & (value.isna() | (value < 0) | (value % 1 != 0))
    return value.where(~bad), bad


def _prices(
    table: pd.DataFrame, columns: list[OddsColumn], problems: _Problems, on_invalid: str
) -> tuple[np.ndarray, int]:
    """The odds matrix (rows x columns, NaN where absent) and how many prices were dropped."""
    if not columns:
        return np.empty((len(table), 0)), 0
    raw = table[[c.column for c in columns]]
    prices = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
    given = raw.ne("").to_numpy()
    unparsable = given & ~np.isfinite(prices)
    too_low = np.isfinite(prices) & (prices <= 1.0)
    dropped = 0
    for mask, what in ((unparsable, "is not a number"), (too_low, "is not above 1")):
        rows, cols = np.nonzero(mask)
        for r, c in zip(rows, cols, strict=True):
            reason = f"{columns[c].column} price {raw.iat[r, c]!r} {what}"
            if on_invalid == "drop":
                line = problems.lines[r]
                logger.warning("%s:line %d: %s; dropped", problems.source, line, reason)
                dropped += 1
            else:
                problems.add_row(int(r), reason)
    prices[unparsable | too_low] = np.nan
    return prices, dropped


def _quoted(table: pd.DataFrame, column: str) -> Callable[[int], str]:
    return lambda row: f"{column} {table[column].iat[row]!r}"


def _results_checked(table: pd.DataFrame, problems: _Problems) -> pd.DataFrame:
    """Goals, FTR and whether each match was played; bad or contradictory results noted."""
    home_goals, bad_home = _goals(table["FTHG"])
    away_goals, bad_away = _goals(table["FTAG"])
    problems.add(bad_home, lambda r: f"{_quoted(table, 'FTHG')(r)} is not a number of goals")
    problems.add(bad_away, lambda r: f"{_quoted(table, 'FTAG')(r)} is not a number of goals")
    ftr = table["FTR"].str.upper()
    known = ftr.isin(list(_WINNER))
    problems.add(ftr.ne("") & ~known, lambda r: f"{_quoted(table, 'FTR')(r)} is not H, D or A")
    given = table[["FTHG", "FTAG", "FTR"]].ne("").sum(axis=1)
    problems.add(
        given.between(1, 2),
        lambda r: "incomplete result: FTHG={!r}, FTAG={!r}, FTR={!r}".format(
            *table[["FTHG", "FTAG", "FTR"]].iloc[r]
        ),
    )
    played = given.eq(3)
    expected = np.select(
        [home_goals > away_goals, home_goals < away_goals, home_goals == away_goals],
        ["H", "A", "D"],
        default="",
    )
    problems.add(
        played & (expected != "") & known & (ftr != expected),
        lambda r: (
            f"FTR {ftr.iat[r]!r} contradicts the score "
            f"{home_goals.iat[r]:.0f}-{away_goals.iat[r]:.0f}"
        ),
    )
    return pd.DataFrame(
        {"home_goals": home_goals, "away_goals": away_goals, "ftr": ftr, "played": played}
    )


def _matches(table: pd.DataFrame, problems: _Problems) -> pd.DataFrame:
    """One row per match: key, competition, season, kickoff, teams, goals, FTR; bad rows noted."""
    for column in ("Div", "HomeTeam", "AwayTeam"):
        problems.add(table[column].eq(""), f"{column} is empty")
    dates = _parse_dates(table["Date"])
    problems.add(
        dates.isna(), lambda r: f"{_quoted(table, 'Date')(r)} is not dd/mm/yy or dd/mm/yyyy"
    )
    minutes, bad_time = _kickoff_minutes(table.get("Time"), len(table))
    problems.add(bad_time, lambda r: f"{_quoted(table, 'Time')(r)} is not hh:mm")
    results = _results_checked(table, problems)

    key = (
        f"{KEY_PREFIX}:" + table["Div"] + ":" + dates.dt.strftime("%Y-%m-%d") + ":"
        + table["HomeTeam"] + ":" + table["AwayTeam"]
    )  # fmt: skip
    first_line = dict(zip(key[::-1], problems.lines[::-1], strict=True))
    duplicate = key.notna() & key.duplicated()
    problems.add(duplicate, lambda r: f"same Div, date and teams as line {first_line[key.iat[r]]}")
    first_match = dates.groupby(table["Div"]).transform("min")
    matches = pd.DataFrame(
        {
            "event_key": key,
            "competition": table["Div"],
            "season": first_match.map(season_of, na_action="ignore"),
            "starts_at": (dates + pd.to_timedelta(minutes, unit="min")).dt.tz_localize("UTC"),
            "home": table["HomeTeam"],
            "away": table["AwayTeam"],
        }
    )
    return pd.concat([matches, results], axis=1)


def _build_batch(m: pd.DataFrame, columns: list[OddsColumn], prices: np.ndarray) -> EventBatch:
    n = len(m)
    keys = m["event_key"].to_numpy(dtype=object)
    played = m["played"].to_numpy(dtype=bool)
    is_total = np.array([c.market_key == TOTAL_KEY for c in columns], dtype=bool)
    has_total = ~np.isnan(prices[:, is_total]).all(axis=1) if is_total.any() else np.zeros(n, bool)

    def scores(goals: pd.Series) -> list[int | None]:
        return [int(g) if p else None for g, p in zip(goals, played, strict=True)]

    events = pd.DataFrame(
        {
            "event_key": keys, "source": SOURCE, "sport": SPORT,
            "competition": m["competition"].to_numpy(dtype=object),
            "season": m["season"].to_numpy(dtype=object), "starts_at": m["starts_at"],
            "home": m["home"].to_numpy(dtype=object), "away": m["away"].to_numpy(dtype=object),
            "home_score": pd.Series(scores(m["home_goals"]), dtype=object),
            "away_score": pd.Series(scores(m["away_goals"]), dtype=object),
        }
    )  # fmt: skip
    total_keys = keys[has_total]
    markets = pd.DataFrame(
        {
            "event_key": np.concatenate([keys, total_keys]),
            "market_key": [MATCH_ODDS_KEY] * n + [TOTAL_KEY] * len(total_keys),
            "type": [MarketType.MATCH_ODDS.value] * n + [MarketType.TOTAL.value] * len(total_keys),
            "line": [None] * n + [TOTAL_LINE] * len(total_keys),
        }
    )
    participants = np.column_stack(
        [m["home"].to_numpy(dtype=object), np.full(n, None), m["away"].to_numpy(dtype=object)]
    )
    selections = pd.DataFrame(
        {
            "event_key": np.concatenate([np.repeat(keys, 3), np.repeat(total_keys, 2)]),
            "market_key": [MATCH_ODDS_KEY] * (3 * n) + [TOTAL_KEY] * (2 * len(total_keys)),
            "name": ["home", "draw", "away"] * n + ["over", "under"] * len(total_keys),
            "position": [0, 1, 2] * n + [0, 1] * len(total_keys),
            "participant": list(participants.ravel()) + [None] * (2 * len(total_keys)),
            "true_probability": None,
        }
    )
    return EventBatch(
        events, markets, selections, _odds_frame(m, columns, prices), _results(m, has_total)
    )


def _odds_frame(m: pd.DataFrame, columns: list[OddsColumn], prices: np.ndarray) -> pd.DataFrame:
    rows, cols = np.nonzero(~np.isnan(prices))
    kickoff = m["starts_at"].dt.tz_localize(None).to_numpy()
    collected = kickoff.astype("datetime64[D]") - np.timedelta64(PRE_CLOSE_DAYS_BEFORE, "D")
    collected = collected + np.timedelta64(PRE_CLOSE_HOUR, "h")
    is_close = np.array([c.kind == OddsKind.CLOSE for c in columns], dtype=bool)
    captured = np.where(is_close[cols], kickoff[rows], collected.astype(kickoff.dtype)[rows])

    def meta(attr: str) -> np.ndarray:
        return np.array([str(getattr(c, attr)) for c in columns], dtype=object)[cols]

    return pd.DataFrame(
        {
            "event_key": m["event_key"].to_numpy(dtype=object)[rows],
            "market_key": meta("market_key"),
            "selection": meta("selection"),
            "bookmaker": meta("bookmaker"),
            "kind": meta("kind"),
            "captured_at": pd.DatetimeIndex(captured).tz_localize("UTC"),
            "price": prices[rows, cols],
        }
    )


def _results(m: pd.DataFrame, has_total: np.ndarray) -> pd.DataFrame:
    played = m["played"].to_numpy(dtype=bool)
    keys = m["event_key"].to_numpy(dtype=object)
    goals = (m["home_goals"] + m["away_goals"]).to_numpy(dtype=float)
    settled_total = played & has_total
    over = np.where(goals[settled_total] > TOTAL_LINE, "over", "under")
    return pd.DataFrame(
        {
            "event_key": np.concatenate([keys[played], keys[settled_total]]),
            "market_key": [MATCH_ODDS_KEY] * int(played.sum()) + [TOTAL_KEY] * len(over),
            "winner": list(m["ftr"][played].map(_WINNER)) + list(over),
        }
    )


def _parse(path: Path, on_invalid_price: OnInvalidPrice) -> tuple[EventBatch, int]:
    """The file's batch and how many invalid prices were dropped; raises on any bad row."""
    if on_invalid_price not in ("reject", "drop"):
        raise InvalidInput(f"on_invalid_price must be 'reject' or 'drop', not {on_invalid_price!r}")
    table, lines, too_wide = _read_table(path)
    problems = _Problems(str(path), lines)
    for row, reason in too_wide.items():
        problems.add_row(row, reason)
    matches = _matches(table, problems)
    columns = odds_columns(list(table.columns))
    prices, dropped = _prices(table, columns, problems, on_invalid_price)
    if problems.found:
        raise ImportRejected(str(path), problems.sorted())
    return _build_batch(matches, columns, prices), dropped


def read_football_data(
    path: Path | str, *, on_invalid_price: OnInvalidPrice = "reject"
) -> EventBatch:
    """Parse and validate one football-data.co.uk CSV into an :class:`EventBatch`; no database.

    Args:
        path: the CSV file.
        on_invalid_price: ``"reject"`` (default) makes a price that is not a number above 1 a
            bad row; ``"drop"`` leaves such prices out (logged) and keeps the match. A few real
            files carry such glitches (a ``0.0`` or ``0.42`` closing over/under price).

    Raises:
        ImportRejected: listing every bad row with its line and reason.
    """
    return _parse(Path(path), on_invalid_price)[0]


def import_football_data(
    session: Session, path: Path | str, *, on_invalid_price: OnInvalidPrice = "reject"
) -> ImportReport:
    """Import one football-data.co.uk CSV into the store in the caller's transaction.

    Matches already in the store (same event key) are skipped, so importing a file twice
    changes nothing. Nothing is written when any row is bad. Never commits.

    Raises:
        ImportRejected: listing every bad row with its line and reason.
    """
    batch, dropped = _parse(Path(path), on_invalid_price)
    written = write_batch(session, batch)
    report = ImportReport(
        source=str(path),
        rows_read=len(batch.events),
        events_added=written.events_added,
        events_skipped=written.events_skipped,
        events_settled=written.events_settled,
        markets_added=written.markets_added,
        odds_added=written.odds_added,
        results_added=written.results_added,
        prices_dropped=dropped,
    )
    logger.info("imported %s", report)
    return report
