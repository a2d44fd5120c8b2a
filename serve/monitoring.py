"""Live scores of the served models, refreshed in the background and exported as metrics.

Every ``interval_s`` the ingress scores the settled predictions it has logged
(:func:`betting.monitoring.live_scores`: log loss, Brier, ECE and CLV by model name and version)
and sets gauges ``ml_live_log_loss``, ``ml_live_ece``, ``ml_live_clv`` and
``ml_live_settled_markets`` per model and version, so a model whose live log loss drifts above
its holdout score shows on a dashboard before it costs money. ``GET /api/v1/models`` shows the
same numbers next to each version's holdout score.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from ray.serve import metrics
from sqlalchemy import Engine

from betting.monitoring import MODEL_COLUMNS, SCORE_COLUMNS, live_scores
from betting.store import session_scope

logger = logging.getLogger(__name__)

_GAUGES = {
    "log_loss": "ml_live_log_loss",
    "ece": "ml_live_ece",
    "clv": "ml_live_clv",
    "markets": "ml_live_settled_markets",
}


class LiveScores:
    """The latest live scores, kept fresh by :meth:`run`.

    Args:
        engine: the store (a callable: opened on first use, off the event loop).
        interval_s: seconds between refreshes.
    """

    def __init__(self, engine: Callable[[], Engine], interval_s: float = 60.0) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.table = pd.DataFrame(columns=[*MODEL_COLUMNS, *SCORE_COLUMNS])
        self._gauges: dict[str, Any] = {}

    def _read(self) -> pd.DataFrame:
        with session_scope(self.engine()) as session:
            return live_scores(session)

    async def refresh(self) -> pd.DataFrame:
        """Score the settled predictions now and update the gauges."""
        self.table = await asyncio.to_thread(self._read)
        self._export()
        return self.table

    def _export(self) -> None:
        if not self._gauges:
            for column, name in _GAUGES.items():
                self._gauges[column] = metrics.Gauge(
                    name, description=f"Live {column} of settled predictions, by model version.",
                    tag_keys=("model", "version"),  # type: ignore[arg-type]
                )  # fmt: skip
        for row in self.table.itertuples(index=False):
            tags = {"model": str(row.model_name), "version": str(row.model_version)}
            for column, gauge in self._gauges.items():
                value = getattr(row, column, None)
                if value is not None and math.isfinite(float(value)):
                    gauge.set(float(value), tags=tags)

    async def run(self) -> None:
        """Refresh forever (a task of the ingress replica); a failure is logged and retried."""
        while True:
            try:
                await self.refresh()
            except Exception as e:  # noqa: BLE001 - monitoring never takes the replica down
                logger.warning("live scores not refreshed: %s", e)
            await asyncio.sleep(self.interval_s)

    def of(self, model_name: str) -> list[dict[str, Any]]:
        """The live scores of every version of ``model_name``, newest version first."""
        rows = self.table[self.table["model_name"] == model_name]
        out = []
        for record in rows.sort_values("model_version", ascending=False).to_dict("records"):
            out.append({k: _plain(v) for k, v in record.items() if k != "model_name"})
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value
