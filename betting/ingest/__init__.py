"""Ingestion: bringing outside data into betml's store, transactionally and idempotently.

- :mod:`betting.ingest.football_data`: football-data.co.uk CSVs (results and bookmaker odds)
  into an :class:`~betting.batch.EventBatch`, written by :func:`betting.store.write_batch`.
- :mod:`betting.ingest.backtest_export`: the Go backtesting service's JSON export (``MLExport``)
  into backtest runs, bets and equity curves.

Every importer either writes all of a file or, when any row or field is bad, raises
:class:`~betting.errors.ImportRejected` listing every problem with its file, line or field and
reason, and writes nothing. Importers never commit: the caller's transaction decides
(:func:`betting.store.session_scope` commits when its block succeeds). Each returns an
:class:`ImportReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ImportReport:
    """What one import added and skipped; counts that do not apply to a source stay 0.

    Attributes:
        source: the file (or name) imported.
        rows_read: data rows read from the file (fully empty rows not counted).
        events_added: events new to the store.
        events_skipped: events already in the store (same natural key), left untouched.
        events_settled: events stored without a result that this import settled.
        markets_added: markets written with the new events.
        odds_added: odds snapshots written with the new events.
        results_added: settled markets written with the new events.
        prices_dropped: prices left out because they were invalid (only when asked to drop them).
        runs_added: backtest runs new to the store.
        runs_skipped: backtest runs already in the store (same strategy, version and period).
        bets_added: backtest bets written with the new runs.
        equity_points_added: equity-curve points written with the new runs.
    """

    source: str
    rows_read: int = 0
    events_added: int = 0
    events_skipped: int = 0
    events_settled: int = 0
    markets_added: int = 0
    odds_added: int = 0
    results_added: int = 0
    prices_dropped: int = 0
    runs_added: int = 0
    runs_skipped: int = 0
    bets_added: int = 0
    equity_points_added: int = 0

    def __str__(self) -> str:
        counts = ", ".join(
            f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}"
            for f in fields(self)
            if f.name != "source" and getattr(self, f.name)
        )
        return f"{self.source}: {counts or 'nothing to do'}"
