"""Charts served by ``/api/v1/visualize``: each takes the JSON body of its route and draws it
as a PNG (matplotlib, imported on first use: most replicas never draw)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_DPI = 110


@contextmanager
def _figure(width: float, height: float, columns: int = 1) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=(width, height), squeeze=False)
    try:
        yield figure, axes[0]
    finally:
        plt.close(figure)


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def training_progress_png(body: dict[str, Any]) -> bytes:
    """The run's metric histories; for a sweep's trial, every trial's score and the best so far."""
    trials = body.get("trials") or []
    with _figure(11 if trials else 7, 4.2, 2 if trials else 1) as (figure, axes):
        history = axes[0]
        for name, points in sorted(body["metrics"].items()):
            if len(points) > 1:
                history.plot([p["step"] for p in points], [p["value"] for p in points],
                             marker=".", label=name)  # fmt: skip
        history.set_title(f"run {body['run_name'] or body['run_id']}")
        history.set_xlabel("step (fold or iteration)")
        if history.lines:
            history.legend(fontsize=7)
        else:
            history.text(0.5, 0.5, "no metric with more than one step", ha="center",
                         transform=history.transAxes)  # fmt: skip
        if trials:
            scored = [t for t in trials if t["score"] is not None]
            chart = axes[1]
            chart.scatter(range(1, len(scored) + 1), [t["score"] for t in scored], s=14,
                          label="trial")  # fmt: skip
            chart.plot(range(1, len(scored) + 1), body["best_so_far"], color="C3",
                       label="best so far")  # fmt: skip
            chart.set_title(f"sweep {body['sweep']}: {body['metric']} ({len(trials)} trials)")
            chart.set_xlabel("trial, in start order")
            chart.legend(fontsize=7)
        return _png(figure)


def feature_importance_png(body: dict[str, Any]) -> bytes:
    """Horizontal bars: holdout log-loss increase when each feature is shuffled."""
    features = body["features"]
    with _figure(7, 0.28 * len(features) + 1.2) as (figure, axes):
        chart = axes[0]
        names = [f["feature"] for f in reversed(features)]
        chart.barh(names, [f["importance"] for f in reversed(features)],
                   xerr=[f["std"] for f in reversed(features)], color="C0")  # fmt: skip
        chart.set_xlabel("holdout log-loss increase when shuffled (nats per market)")
        chart.set_title(f"{body['model_name']} v{body['version']}: permutation importance")
        chart.tick_params(axis="y", labelsize=7)
        return _png(figure)


def strategy_ranking_png(body: dict[str, Any]) -> bytes:
    """Horizontal bars of the strategies' scores, best at the top."""
    ranked = body["strategies"]
    with _figure(7, 0.35 * max(len(ranked), 1) + 1.2) as (figure, axes):
        chart = axes[0]
        labels = [f"{s['strategy_id']} {s['strategy_version']}" for s in reversed(ranked)]
        chart.barh(labels, [s["score"] for s in reversed(ranked)], color="C2")
        chart.set_xlim(0, 1)
        chart.set_xlabel(f"score (scoring {body.get('scoring_version', '')})")
        chart.set_title("strategies, best first")
        if not ranked:
            chart.text(0.5, 0.5, "no stored backtests", ha="center", transform=chart.transAxes)
        return _png(figure)
