"""Strategies: EvaluateStrategy, GenerateStrategy and the ``/api/v1/strategies`` routes.

Scores come from :mod:`betting.strategy_scoring`; a strategy without walk-forward metrics gets
its expected out-of-sample ROI from the backtest model (:class:`~betting.strategy_scoring.
OosRoiModel`) fitted on the stored runs that have them, kept per replica and refitted when the
number of stored runs changes.

Generation backtests candidate parameters (:mod:`betting.strategy_search`) on the stored settled
events of the constraints' sport, competition, market type and period, with the probabilities
of the outcome model GetPrediction would use (the events' offline features, scored through the
same model deployment) and the best latest price of the allowed bookmakers. Only seasons the
model never trained on are used: those of the registered version's holdout (its
``betml.holdout_id`` tag) and later ones.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from google.protobuf import json_format
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import selectinload

from betting import strategy_search
from betting.errors import InvalidInput
from betting.frames import PSEUDO_BOOKMAKER_PREFIX
from betting.ingest.backtest_export import (
    BacktestMetrics,
    BacktestSummary,
    BetRecord,
    EquityRecord,
    RiskProfile,
    StrategyMetadata,
)
from betting.schema import BacktestRun
from betting.store import session_scope
from betting.strategy_scoring import BacktestFacts, OosRoiModel, StrategyScore, score_backtest
from cluster import tracking
from serve.errors import BadRequest, FieldViolation, ResourceNotFound, ServeError
from serve.models import ModelInfo, RegistryLoader
from serve.online import model_input
from serve.predictions import model_info
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import MARKET_TYPES
from serve.service import PredictionService

logger = logging.getLogger(__name__)

DEFAULT_PROPOSALS = 3
MAX_PROPOSALS = 10
_OUTCOMES = {pb.BetOutcome.Name(v): v for v in pb.BetOutcome.values()}


class StrategyBacktestDoc(BaseModel):
    """A strategy's backtest in the MLExport JSON shape (what is not scored is optional)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str | None = None
    exported_at: AwareDatetime | None = None
    strategy: StrategyMetadata
    summary: BacktestSummary
    metrics: BacktestMetrics
    bets: list[BetRecord] = Field(default_factory=list)
    equity_curve: list[EquityRecord] = Field(default_factory=list)
    risk_profile: RiskProfile | None = None

    def facts(self) -> BacktestFacts:
        bets = sorted(self.bets, key=lambda b: b.placed_at)
        pnl = np.array([b.pnl for b in bets if b.outcome != "pending"], dtype=float)
        return BacktestFacts(self.summary, self.metrics, self.strategy.parameters,
                             pnl if self.bets else None)  # fmt: skip


class RunKeyDoc(BaseModel):
    """The identity of a stored backtest run."""

    model_config = ConfigDict(extra="forbid")

    strategy_id: str = Field(min_length=1)
    strategy_version: str = Field(min_length=1)
    period_start: AwareDatetime
    period_end: AwareDatetime


@dataclass(frozen=True)
class ScoredStrategy:
    """A strategy's identity and score (``run`` set for a stored run)."""

    strategy_id: str
    strategy_name: str
    strategy_version: str
    score: StrategyScore
    run: RunKeyDoc | None = None
    summary: BacktestSummary | None = None
    metrics: BacktestMetrics | None = None


def _path(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _violations(error: ValidationError, prefix: str) -> BadRequest:
    return BadRequest(
        [FieldViolation(_path(prefix, e["loc"]), str(e["msg"])) for e in error.errors()]
    )


def raw_backtest_doc(raw: pb.StrategyBacktest, prefix: str = "raw_backtest") -> StrategyBacktestDoc:
    """The checked form of a StrategyBacktest (its risk profile is not scored, so not read).

    Raises:
        BadRequest: naming every bad field by its path (``raw_backtest.bets[2].odds``).
    """
    document = json_format.MessageToDict(
        raw, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    document.pop("risk_profile", None)
    for bet in document.get("bets", []):
        outcome = bet.get("outcome", "")
        bet["outcome"] = outcome.removeprefix("BET_OUTCOME_").lower() if outcome else outcome
    try:
        return StrategyBacktestDoc.model_validate(document)
    except ValidationError as e:
        raise _violations(e, prefix) from e


def run_key_doc(key: pb.BacktestRunKey, prefix: str = "stored_run") -> RunKeyDoc:
    """The checked form of a BacktestRunKey (BadRequest naming the bad fields)."""
    problems = [
        FieldViolation(f"{prefix}.{name}", "is required")
        for name in ("period_start", "period_end")
        if not key.HasField(name)
    ]
    problems += [
        FieldViolation(f"{prefix}.{name}", "is required")
        for name in ("strategy_id", "strategy_version")
        if not getattr(key, name)
    ]
    if problems:
        raise BadRequest(problems)
    return RunKeyDoc(
        strategy_id=key.strategy_id, strategy_version=key.strategy_version,
        period_start=key.period_start.ToDatetime(tzinfo=UTC),
        period_end=key.period_end.ToDatetime(tzinfo=UTC),
    )  # fmt: skip


def _run_facts(run: BacktestRun, *, with_bets: bool) -> BacktestFacts:
    summary = BacktestSummary.model_validate(
        {k: v for k, v in run.summary.items() if k in BacktestSummary.model_fields}
    )
    pnl = None
    if with_bets and run.bets:
        settled = sorted((b for b in run.bets if b.outcome != "pending"), key=lambda b: b.placed_at)
        pnl = np.array([b.pnl for b in settled], dtype=float)
    return BacktestFacts(summary, BacktestMetrics.model_validate(run.metrics), run.parameters, pnl)


def _run_key(run: BacktestRun) -> RunKeyDoc:
    return RunKeyDoc(
        strategy_id=run.strategy_id, strategy_version=run.strategy_version,
        period_start=run.period_start, period_end=run.period_end,
    )  # fmt: skip


def score_proto(score: StrategyScore) -> pb.EvaluateStrategyResponse:
    """EvaluateStrategy's answer for a score."""
    d = score.drawdown
    response = pb.EvaluateStrategyResponse(
        score=score.score, risk_adjusted_return=score.risk_adjusted_return,
        drawdown=pb.DrawdownDistribution(samples=d.samples, mean=d.mean, p50=d.p50, p95=d.p95,
                                         p99=d.p99, historical=d.historical),
        warnings=list(score.warnings), scoring_version=score.scoring_version,
    )  # fmt: skip
    if score.overfit_score is not None:
        response.overfit_score = score.overfit_score
    return response


def generation_counter() -> Any:
    """``ml_strategy_generation_total`` by status (``proposed``, ``unmet``, ``refused``)."""
    from ray.serve import metrics

    return metrics.Counter(
        "ml_strategy_generation", description="GenerateStrategy calls by outcome.",
        tag_keys=("status",),
    )  # fmt: skip


class StrategyService:
    """Strategy scoring, ranking and generation over the store and the served outcome models.

    Args:
        predictions: the service whose model deployments score events.
        engine: the store (a callable: opened on first use).
        registry: where model versions' tags are read; default the replica's MLflow.
        generations: the ``ml_strategy_generation_total`` counter; None counts nothing.
    """

    def __init__(
        self,
        predictions: PredictionService,
        engine: Callable[[], Engine],
        *,
        registry: RegistryLoader | None = None,
        generations: Any | None = None,
    ) -> None:
        self.predictions = predictions
        self._engine = engine
        self._registry = registry or RegistryLoader()
        self._generations = generations
        self._fitted: tuple[int, OosRoiModel | None, int] | None = None
        self._lock = threading.Lock()

    # --- scoring ---------------------------------------------------------------------------

    def backtest_model(self) -> tuple[OosRoiModel | None, int]:
        """The backtest model of the stored runs (refitted when their number changed) and how
        many stored runs have walk-forward metrics."""
        with session_scope(self._engine()) as session:
            count = session.scalar(select(func.count()).select_from(BacktestRun)) or 0
            with self._lock:
                if self._fitted is not None and self._fitted[0] == count:
                    return self._fitted[1], self._fitted[2]
            runs = [_run_facts(r, with_bets=False) for r in session.scalars(select(BacktestRun))]
        model = OosRoiModel.fit(runs)
        with_wf = sum(r.metrics.walk_forward is not None for r in runs)
        with self._lock:
            self._fitted = (count, model, with_wf)
        logger.info("backtest model of %d stored runs (%d with walk-forward): %s",
                    count, with_wf, "fitted" if model else "too few")  # fmt: skip
        return model, with_wf

    def _score(self, facts: BacktestFacts) -> StrategyScore:
        model, with_wf = self.backtest_model()
        predicted = None
        if facts.metrics.walk_forward is None and model is not None:
            predicted = model.predict(facts)
        return score_backtest(facts, predicted=predicted, stored_runs_with_walk_forward=with_wf)

    def _stored(self, keys: Sequence[tuple[RunKeyDoc, str]]) -> list[ScoredStrategy]:
        out = []
        with session_scope(self._engine()) as session:
            for key, field in keys:
                run = session.scalar(
                    select(BacktestRun).options(selectinload(BacktestRun.bets)).where(
                        BacktestRun.strategy_id == key.strategy_id,
                        BacktestRun.strategy_version == key.strategy_version,
                        BacktestRun.period_start == key.period_start,
                        BacktestRun.period_end == key.period_end,
                    )
                )  # fmt: skip
                if run is None:
                    raise ResourceNotFound(
                        "backtest run", f"{key.strategy_id}@{key.strategy_version}",
                        f"{field}: no stored run of strategy {key.strategy_id!r} version "
                        f"{key.strategy_version!r} for {key.period_start.isoformat()} to "
                        f"{key.period_end.isoformat()}",
                    )  # fmt: skip
                facts = _run_facts(run, with_bets=True)
                out.append((run, facts))
            scored = [
                ScoredStrategy(
                    r.strategy_id,
                    r.strategy_name,
                    r.strategy_version,
                    self._score(f),
                    _run_key(r),
                    f.summary,
                    f.metrics,
                )
                for r, f in out
            ]
        return scored

    def _raw(self, doc: StrategyBacktestDoc) -> ScoredStrategy:
        s = doc.strategy
        facts = doc.facts()
        return ScoredStrategy(
            s.id, s.name, s.version, self._score(facts), None, facts.summary, facts.metrics
        )

    async def evaluate(self, request: pb.EvaluateStrategyRequest) -> pb.EvaluateStrategyResponse:
        which = request.WhichOneof("backtest")
        if which == "raw_backtest":
            doc = raw_backtest_doc(request.raw_backtest)
            scored = await asyncio.to_thread(self._raw, doc)
        elif which == "stored_run":
            key = run_key_doc(request.stored_run)
            [scored] = await asyncio.to_thread(self._stored, [(key, "stored_run")])
        else:
            raise BadRequest.of("backtest", "set one of raw_backtest and stored_run")
        return score_proto(scored.score)

    async def rank(
        self, items: Sequence[StrategyBacktestDoc | RunKeyDoc]
    ) -> list[tuple[int, ScoredStrategy]]:
        """Score every item: ``(position in items, score)``, best score first (ties keep the
        request order)."""

        def score_all() -> list[ScoredStrategy]:
            keys = [(item, f"strategies[{i}].stored_run") for i, item in enumerate(items)
                    if isinstance(item, RunKeyDoc)]  # fmt: skip
            stored = iter(self._stored(keys))
            return [
                next(stored) if isinstance(item, RunKeyDoc) else self._raw(item) for item in items
            ]

        scored = await asyncio.to_thread(score_all)
        return sorted(enumerate(scored), key=lambda pair: -pair[1].score.score)

    async def performance(self, strategy_id: str | None, limit: int) -> list[ScoredStrategy]:
        """The latest stored runs (of one strategy when ``strategy_id`` is given) with scores."""

        def read() -> list[ScoredStrategy]:
            with session_scope(self._engine()) as session:
                query = select(BacktestRun).order_by(
                    BacktestRun.imported_at.desc(), BacktestRun.id.desc()
                )
                if strategy_id:
                    query = query.where(BacktestRun.strategy_id == strategy_id)
                runs = session.scalars(query.limit(limit)).all()
                keys = [(_run_key(r), "run") for r in runs]
            return self._stored(keys)

        return await asyncio.to_thread(read)

    # --- generation ------------------------------------------------------------------------

    async def generate(self, request: pb.GenerateStrategyRequest) -> pb.GenerateStrategyResponse:
        status = "refused"
        try:
            response = await self._generate(_Constraints.of(request))
            status = "proposed" if response.proposals else "unmet"
            return response
        finally:
            if self._generations is not None:
                self._generations.inc(tags={"status": status})

    async def _generate(self, c: _Constraints) -> pb.GenerateStrategyResponse:
        features = self.predictions.features
        table, odds = await asyncio.to_thread(features.sport_features, c.sport)
        if table.empty:
            return _unmet(f"sport {c.sport!r}: no stored events of this sport")
        rows = table[table["won"].notna()]
        if c.competition:
            rows = rows[rows["competition"] == c.competition]
        if c.market_type:
            rows = rows[rows["market_type"] == c.market_type]
        if c.period_start is not None:
            rows = rows[rows["starts_at"] >= c.period_start]
        if c.period_end is not None:
            rows = rows[rows["starts_at"] <= c.period_end]
        if rows.empty:
            return _unmet(f"{c.describe()}: no settled events match in the store")
        judged: list[tuple[strategy_search.Judged, str, ModelInfo]] = []
        reasons: list[str] = []
        not_served: ServeError | None = None
        for market_key, market_rows in rows.groupby("market_key", sort=True):
            answer = await self.predictions.score_market_rows(
                c.sport, str(market_key), model_input(market_rows)
            )
            if answer.error is not None:
                if isinstance(answer.error, ResourceNotFound) and not c.market_type:
                    not_served = answer.error
                    continue
                raise answer.error
            assert answer.probabilities is not None and answer.model is not None
            found, reason = await asyncio.to_thread(
                self._search_market, c, market_rows, answer.probabilities, answer.model,
                odds,
            )  # fmt: skip
            judged += [(j, str(market_key), answer.model) for j in found]
            reasons += [reason] if reason else []
        if not judged and not reasons and not_served is not None:
            raise not_served
        return _proposals(c, judged, reasons)

    def _search_market(
        self,
        c: _Constraints,
        rows: pd.DataFrame,
        probabilities: np.ndarray,
        model: ModelInfo,
        odds: pd.DataFrame,
    ) -> tuple[list[strategy_search.Judged], str | None]:
        """Judged candidates of one market key, or why there are none."""
        seasons = self._untrained_seasons(model)
        rows = rows.assign(p=np.asarray(probabilities, dtype=float))
        market = str(rows["market_key"].iloc[0])
        if seasons:
            rows = rows[rows["season"].astype(str) >= min(seasons)]
            if rows.empty:
                return [], (
                    f"{c.describe()} {market}: no settled events from season {min(seasons)} "
                    f"on, the first that {model.name} v{model.version} did not train on"
                )
        prices = _best_prices(odds, rows, c.bookmakers)
        rows = rows.join(prices, on=["event_key", "market_key", "selection"])
        priced = rows.groupby(["event_key", "market_key"])["odds"].transform(
            lambda s: s.notna().all()
        )
        rows = rows[priced.astype(bool)]
        if rows.empty:
            return [], f"bookmakers {list(c.bookmakers)}: no stored prices of {market} from them"
        table = pd.DataFrame({
            "market": rows["event_key"] + "\x1f" + rows["market_key"],
            "starts_at": rows["starts_at"], "p": rows["p"], "odds": rows["odds"],
            "won": rows["won"],
        })  # fmt: skip
        grid = strategy_search.candidate_grid(
            min_odds=c.min_odds, max_odds=c.max_odds, max_stake_fraction=c.max_stake_fraction
        )
        try:
            return strategy_search.search(table, grid), None
        except InvalidInput as e:
            return [], f"{c.describe()} {market}: {e}"

    def _untrained_seasons(self, model: ModelInfo) -> list[str]:
        """The seasons of the version's holdout (never trained on); empty when it has no tag."""
        try:
            version = self._registry.client().get_model_version(model.name, str(model.version))
        except Exception as e:  # noqa: BLE001 - no tag: every season is used (logged)
            logger.warning("no tags of %s v%s: %s", model.name, model.version, e)
            return []
        tag = version.tags.get(tracking.TAG_HOLDOUT_ID, "")
        parts = tag.split("/")
        if len(parts) < 4:
            logger.warning("%s v%s has no holdout tag; every season is used", model.name,
                           model.version)  # fmt: skip
            return []
        return [s for s in parts[-2].split(",") if s]


def _best_prices(odds: pd.DataFrame, rows: pd.DataFrame, bookmakers: tuple[str, ...]) -> pd.Series:
    """Per selection of ``rows``, the best of the bookmakers' latest prices."""
    keys = ["event_key", "market_key", "selection"]
    mine = odds[odds["event_key"].isin(rows["event_key"].unique())]
    if bookmakers:
        mine = mine[mine["bookmaker"].isin(bookmakers)]
    else:
        mine = mine[~mine["bookmaker"].astype(str).str.startswith(PSEUDO_BOOKMAKER_PREFIX)]
    latest = mine.sort_values("captured_at").groupby([*keys, "bookmaker"])["price"].last()
    return latest.groupby(level=keys).max().rename("odds")


@dataclass(frozen=True)
class _Constraints:
    """StrategyConstraints, checked, and the number of proposals wanted."""

    sport: str
    competition: str
    market_type: str
    max_drawdown: float
    min_bets: int
    min_odds: float | None
    max_odds: float | None
    max_stake_fraction: float | None
    bookmakers: tuple[str, ...]
    period_start: datetime | None
    period_end: datetime | None
    proposals: int

    @classmethod
    def of(cls, request: pb.GenerateStrategyRequest) -> _Constraints:
        """Raises BadRequest naming every bad field (``constraints.max_drawdown``...)."""
        c, bad = request.constraints, []

        def refuse(field: str, reason: str) -> None:
            bad.append(FieldViolation(f"constraints.{field}", reason))

        if not request.HasField("constraints"):
            raise BadRequest.of("constraints", "is required")
        if not c.sport.strip():
            refuse("sport", "is required")
        if not 0.0 < c.max_drawdown <= 1.0:
            refuse("max_drawdown", f"must be in (0, 1], got {c.max_drawdown!r}")
        if c.min_bets < 0:
            refuse("min_bets", f"must be >= 0, got {c.min_bets}")
        min_odds = c.min_odds if c.HasField("min_odds") else None
        max_odds = c.max_odds if c.HasField("max_odds") else None
        if min_odds is not None and not min_odds > 1.0:
            refuse("min_odds", f"must be above 1.0, got {min_odds!r}")
        if max_odds is not None and not max_odds > max(min_odds or 1.0, 1.0):
            refuse("max_odds", f"must be above 1.0 and min_odds, got {max_odds!r}")
        cap = c.max_stake_fraction if c.HasField("max_stake_fraction") else None
        if cap is not None and not 0.0 < cap <= 1.0:
            refuse("max_stake_fraction", f"must be in (0, 1], got {cap!r}")
        if c.market_type and c.market_type not in MARKET_TYPES:
            refuse("market_type", f"unknown market type {c.market_type}")
        start = c.period_start.ToDatetime(tzinfo=UTC) if c.HasField("period_start") else None
        end = c.period_end.ToDatetime(tzinfo=UTC) if c.HasField("period_end") else None
        if start is not None and end is not None and end < start:
            refuse("period_end", f"{end.isoformat()} is before period_start {start.isoformat()}")
        if not 0 <= request.max_proposals <= MAX_PROPOSALS:
            bad.append(FieldViolation(
                "max_proposals", f"must be 1 to {MAX_PROPOSALS} (0: {DEFAULT_PROPOSALS}), "
                f"got {request.max_proposals}",
            ))  # fmt: skip
        if bad:
            raise BadRequest(bad)
        return cls(
            sport=c.sport.strip(), competition=c.competition.strip(),
            market_type=MARKET_TYPES.get(c.market_type, ""), max_drawdown=c.max_drawdown,
            min_bets=c.min_bets, min_odds=min_odds, max_odds=max_odds, max_stake_fraction=cap,
            bookmakers=tuple(b.strip() for b in c.bookmakers if b.strip()), period_start=start,
            period_end=end, proposals=request.max_proposals or DEFAULT_PROPOSALS,
        )  # fmt: skip

    def describe(self) -> str:
        what = " ".join(p for p in (self.sport, self.competition, self.market_type) if p)
        start = self.period_start.date().isoformat() if self.period_start else "the start"
        end = self.period_end.date().isoformat() if self.period_end else "the end"
        return f"{what} from {start} to {end}"


def _unmet(*reasons: str) -> pb.GenerateStrategyResponse:
    return pb.GenerateStrategyResponse(unmet_constraints=list(reasons))


def _proposals(
    c: _Constraints,
    judged: list[tuple[strategy_search.Judged, str, ModelInfo]],
    reasons: list[str],
) -> pb.GenerateStrategyResponse:
    """The candidates meeting the constraints, those chosen on the early span first, best
    score first."""
    ok = [
        (j, m, model) for j, m, model in judged
        if strategy_search.meets(j, max_drawdown=c.max_drawdown, min_bets=c.min_bets)
    ]  # fmt: skip
    if not ok:
        found = [j for j, _, _ in judged]
        unmet = strategy_search.unmet_constraints(
            found, max_drawdown=c.max_drawdown, min_bets=c.min_bets
        )
        return _unmet(*(reasons if not found else unmet))
    ok.sort(key=lambda x: (not x[0].chosen_early, -x[0].score.score))
    best = sorted(ok[: c.proposals], key=lambda x: -x[0].score.score)
    return pb.GenerateStrategyResponse(
        proposals=[_proposal(c, j, market, model) for j, market, model in best]
    )


def _message(model: BaseModel, message: Any) -> Any:
    return json_format.ParseDict(model.model_dump(mode="json", exclude_none=True), message)


def _proposal(
    c: _Constraints, judged: strategy_search.Judged, market: str, model: ModelInfo
) -> pb.StrategyProposal:
    k = judged.candidate
    slug = tracking.market_slug(market)
    strategy_id = (
        f"betml-{c.sport}-{slug}-e{k.min_edge:g}-k{k.kelly_multiplier:g}-s{k.max_stake_fraction:g}"
        + (f"-o{k.min_odds:g}" if k.min_odds else "") + (f"-O{k.max_odds:g}" if k.max_odds else "")
    )  # fmt: skip
    parameters = {
        "sport": c.sport, "market": market, **k.parameters(),
        "bookmakers": list(c.bookmakers), "model": f"{model.name}@{model.alias}",
        "model_version": str(model.version),
        **({"competition": c.competition} if c.competition else {}),
    }  # fmt: skip
    strategy = pb.Strategy(
        id=strategy_id,
        name=f"{k.kelly_multiplier:g} Kelly on {c.sport} {market} edges >= {k.min_edge:.0%}",
        version=f"{model.version}.0.0",
        description=(
            f"Bets the best-edge selection of each {market} market when its edge by "
            f"{model.name} v{model.version} reaches {k.min_edge:g}; stakes {k.kelly_multiplier:g}"
            f" of the Kelly fraction, capped at {k.max_stake_fraction:g} of the bankroll."
        ),
    )
    strategy.parameters.update(parameters)
    risk = judged.risk_profile.model_dump(mode="json")
    risk["risk_level"] = f"RISK_LEVEL_{risk['risk_level'].upper()}"
    s, e = judged.summary, judged.early_summary
    backtests = [
        pb.SupportingBacktest(
            label=f"historical, Monte Carlo and walk-forward: {s.period_start.date()} to "
            f"{s.period_end.date()}",
            summary=_message(judged.summary, pb.BacktestSummary()),
            metrics=_message(judged.metrics, pb.BacktestMetrics()),
            risk_profile=json_format.ParseDict(risk, pb.RiskProfile()),
        ),
        pb.SupportingBacktest(
            label=f"chosen on: {e.period_start.date()} to {e.period_end.date()}",
            summary=_message(judged.early_summary, pb.BacktestSummary()),
            metrics=_message(judged.early_metrics, pb.BacktestMetrics()),
        ),
    ]
    return pb.StrategyProposal(
        strategy=strategy, score=judged.score.score, model=model_info(model), backtests=backtests
    )


def scored_json(scored: ScoredStrategy) -> dict[str, Any]:
    """A score as the HTTP routes answer it."""
    score = scored.score
    return {
        "strategy_id": scored.strategy_id,
        "strategy_name": scored.strategy_name,
        "strategy_version": scored.strategy_version,
        "run": scored.run.model_dump(mode="json") if scored.run else None,
        "score": score.score,
        "risk_adjusted_return": score.risk_adjusted_return,
        "drawdown": asdict(score.drawdown),
        "overfit_score": score.overfit_score,
        "expected_oos_roi": score.expected_oos_roi,
        "expected_oos_source": score.expected_oos_source,
        "probability_of_ruin": score.probability_of_ruin,
        "warnings": list(score.warnings),
        "scoring_version": score.scoring_version,
    }
