"""What each RPC does, independent of the transport: the gRPC methods and the HTTP routes of the
ingress both call :class:`PredictionService` with proto messages.

A prediction takes three steps: the request is checked (:mod:`serve.requests`), the event's
features are built (:mod:`serve.online`, in a worker thread: it is pandas work), and the market's
rows go to the outcome-model deployment named by the model's registry name (multiplexed by
``name@alias``, batched there). BatchPredict does the same for many markets with one feature
build per sport and one model call per model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from betting.errors import InvalidInput
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION
from cluster import tracking
from serve.access import request_id
from serve.agent_client import AgentAsk, AgentClient
from serve.agent_rows import NEUTRAL_STATE, BankrollState
from serve.answer_cache import AnswerCache, CacheCounts
from serve.config import AGENT_DEPLOYMENT, ServeArgs
from serve.errors import (
    BadRequest,
    FeatureVersionMismatch,
    ModelUnavailable,
    ResourceNotFound,
    ServeError,
    as_serve_error,
)
from serve.models import ModelAnswer, ModelStatus, model_id
from serve.online import EventRows, OnlineFeatures
from serve.prediction_log import PredictionLog
from serve.predictions import prediction_response
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.requests import (
    FeaturesRequest,
    MarketRequest,
    Staking,
    features_request,
    prediction_request,
)

logger = logging.getLogger(__name__)

_STATES = {
    "loading": pb.MODEL_STATE_LOADING,
    "loaded": pb.MODEL_STATE_LOADED,
    "failed": pb.MODEL_STATE_FAILED,
}
_HEALTH_TIMEOUT_S = 5.0


def service_version() -> str:
    try:
        return version("betml")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class _Routed:
    """A checked market with its event rows and the model that scores it."""

    item: MarketRequest
    event: EventRows
    rows: pd.DataFrame
    deployment: str
    ref: str


class PredictionService:
    """The RPCs' logic.

    Args:
        args: the application's arguments.
        features: online features over the store.
        models: a DeploymentHandle per model deployment name: the outcome models' and, under
            ``AGENT_DEPLOYMENT``, the strategy agent's.
        prediction_log: where answered markets are logged; None: not logged.
    """

    def __init__(
        self,
        args: ServeArgs,
        features: OnlineFeatures,
        models: Mapping[str, Any],
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.args = args
        self.prediction_log = prediction_log
        self.features = features
        self.models = dict(models)
        self._handles: dict[tuple[str, str], Any] = {}
        self.event_cache = CacheCounts()
        """Stored-event lookups answered from the replica's memory (hits) or the store."""
        self.answers = AnswerCache(args.features.answer_cache_size)
        self._served_versions: dict[tuple[str, str], int] = {}
        self.model_epoch = 0
        """Moves whenever a model deployment serves another version (cached answers go)."""
        self._sport_of: dict[str, str] = {}
        self.agent = AgentClient(args.agent, self.models.get(AGENT_DEPLOYMENT))

    # --- routing ---------------------------------------------------------------------------

    def _model_of(self, item: MarketRequest, sport: str) -> tuple[str, str]:
        """(deployment, name@alias) answering ``item``."""
        if item.model_name:
            deployment = self.args.deployment_for_model(item.model_name)
            alias = item.model_alias or self.args.models[deployment].alias
            return deployment, model_id(item.model_name, alias)
        deployment = self.args.default_deployment
        family = self.args.models[deployment].families[0]
        try:
            name = tracking.model_name(family, sport, tracking.market_slug(item.market_key))
        except InvalidInput as e:
            raise ResourceNotFound(
                "model", f"{sport}/{item.market_key}",
                f"no model serves sport {sport!r} market {item.market_key!r}: {e}",
            ) from e  # fmt: skip
        return deployment, model_id(name, self.args.models[deployment].alias)

    def _handle(self, deployment: str, ref: str) -> Any:
        key = (deployment, ref)
        if key not in self._handles:
            self._handles[key] = self.models[deployment].options(multiplexed_model_id=ref)
        return self._handles[key]

    async def _score(self, deployment: str, ref: str, frame: pd.DataFrame) -> ModelAnswer:
        try:
            answer: ModelAnswer = await self._handle(deployment, ref).predict.remote(frame)
        except (DeploymentUnavailableError, RayActorError, BackPressureError) as e:
            raise ModelUnavailable(f"model deployment {deployment!r} is unavailable: {e}") from e
        model = answer.model
        if model is not None:
            self.note_version(model.name, model.alias, model.version)
        if model is not None and model.feature_schema_version != FEATURE_SCHEMA_VERSION:
            # The feature state is always folded with the code's schema version.
            raise FeatureVersionMismatch(
                f"{model.name} v{model.version} was built for feature schema "
                f"{model.feature_schema_version!r}, the feature state computes "
                f"{FEATURE_SCHEMA_VERSION!r}: retrain it or serve matching code"
            )
        return answer

    def note_version(self, name: str, alias: str, version: int | None) -> None:
        """What a deployment says it serves (answers and health); a change moves the epoch."""
        if version is None:
            return
        if self._served_versions.get((name, alias)) != version:
            if (name, alias) in self._served_versions:
                self.model_epoch += 1
            self._served_versions[(name, alias)] = version

    async def _answer_key(self, request: pb.GetPredictionRequest) -> tuple[bytes, str, int] | None:
        """The cache key of a request, None when its sport is not known yet."""
        if request.HasField("raw_event"):
            sport = request.raw_event.sport
        else:
            sport = self._sport_of.get(request.event_key, "")
        if not sport or self.answers.size <= 0:
            return None
        epoch = self.model_epoch
        await asyncio.to_thread(self.features.states.current, sport)
        version = self.features.states.version(sport)
        return request.SerializeToString(deterministic=True), version, epoch

    async def score_market_rows(
        self, sport: str, market_key: str, frame: pd.DataFrame
    ) -> ModelAnswer:
        """The answer of the model serving ``sport``/``market_key`` by default for whole
        markets' rows (``event_key``, ``market_key`` and the feature columns), as GetPrediction
        routes them (strategy generation scores stored events with it)."""
        deployment, ref = self._model_of(MarketRequest("", market_key, Staking()), sport)
        return await self._score(deployment, ref, frame)

    # --- events ----------------------------------------------------------------------------

    async def _events(self, items: list[MarketRequest]) -> list[EventRows | ServeError]:
        """The event of each item (raw ones built together), or the error it gets."""
        raw = [i for i, item in enumerate(items) if item.raw is not None]
        out: dict[int, EventRows | ServeError] = {}
        if raw:
            built = await asyncio.to_thread(
                self.features.raw_events,
                [items[i].raw for i in raw],  # type: ignore[misc]
            )
            out.update(zip(raw, built, strict=True))
        for i, item in enumerate(items):
            if item.raw is None and (cached := self.features.cached_event(item.event_key)):
                self.event_cache.hits += 1
                out[i] = cached
            elif item.raw is None:
                self.event_cache.misses += 1
                try:
                    out[i] = await asyncio.to_thread(self.features.stored_event, item.event_key)
                except ServeError as e:
                    out[i] = e
        return [out[i] for i in range(len(items))]

    def _route(self, item: MarketRequest, event: EventRows) -> _Routed:
        rows = event.market(item.market_key)
        if rows.empty:
            markets = sorted(event.rows["market_key"].unique())
            raise ResourceNotFound(
                "market", f"{item.event_key}/{item.market_key}",
                f"event {item.event_key!r} has no market {item.market_key!r} (it has {markets})",
            )  # fmt: skip
        deployment, ref = self._model_of(item, event.sport)
        return _Routed(item, event, rows, deployment, ref)

    # --- RPCs ------------------------------------------------------------------------------

    async def get_prediction(
        self, request: pb.GetPredictionRequest, *, agent_state: BankrollState = NEUTRAL_STATE
    ) -> pb.GetPredictionResponse:
        """GetPrediction; ``agent_state`` is the bankroll state the agent stakes from (an
        online request implies the neutral one, see :mod:`serve.agent_rows`)."""
        now = datetime.now(UTC)
        item = prediction_request(request, now)
        key = await self._answer_key(request) if agent_state is NEUTRAL_STATE else None
        if key is not None and (cached := self.answers.get(key)) is not None:
            return self._logged(cached)
        [event] = await self._events([item])
        if isinstance(event, ServeError):
            raise event
        if item.raw is None and len(self._sport_of) < 100_000:  # stored keys' sports, for the cache
            self._sport_of[event.event_key] = event.sport
        routed = self._route(item, event)
        answer = await self._score(
            routed.deployment, routed.ref, event.model_input(item.market_key)
        )
        if answer.error is not None:
            raise answer.error
        assert answer.probabilities is not None and answer.model is not None
        response = prediction_response(
            item, routed.rows, event.quote_table(), answer.probabilities, answer.model, now
        )
        if item.staking.include_agent_stake:
            ask = AgentAsk(item, event.sport, routed.rows, response, agent_state)
            [error] = await self.agent.add_stakes([ask])
            if error is not None:
                raise error
        if key is not None and key[2] == self.model_epoch:
            self.answers.put(key, response)
        return self._logged(response)

    def _logged(self, response: pb.GetPredictionResponse) -> pb.GetPredictionResponse:
        """``response`` with the id it is logged under (left empty when logging is off)."""
        if self.prediction_log is not None:
            response.prediction_id = self.prediction_log.record(response, request_id())
        return response

    async def batch_predict(self, request: pb.BatchPredictRequest) -> pb.BatchPredictResponse:
        count, limit = len(request.requests), self.args.max_batch_markets
        if not 1 <= count <= limit:
            raise BadRequest.of("requests", f"must hold 1 to {limit} markets, got {count}")
        now = datetime.now(UTC)
        results: list[pb.GetPredictionResponse | ServeError | None] = [None] * count
        items: dict[int, MarketRequest] = {}
        for i, one in enumerate(request.requests):
            try:
                item = prediction_request(one, now)
            except ServeError as e:
                results[i] = e
            else:
                items[i] = item
        order = list(items)
        events = await self._events([items[i] for i in order])
        groups: dict[tuple[str, str], list[_Routed]] = {}
        slots: dict[int, tuple[tuple[str, str], int]] = {}
        for i, event in zip(order, events, strict=True):
            try:
                if isinstance(event, ServeError):
                    raise event
                routed = self._route(items[i], event)
            except ServeError as e:
                results[i] = e
                continue
            group = groups.setdefault((routed.deployment, routed.ref), [])
            slots[i] = ((routed.deployment, routed.ref), len(group))
            group.append(routed)
        answers = await asyncio.gather(*(self._score_group(k, g) for k, g in groups.items()))
        by_group = dict(zip(groups, answers, strict=True))
        for i, (key, n) in slots.items():
            answer, routed = by_group[key][n], groups[key][n]
            try:
                if answer.error is not None:
                    raise answer.error
                assert answer.probabilities is not None and answer.model is not None
                results[i] = prediction_response(
                    items[i], routed.rows, routed.event.quote_table(), answer.probabilities,
                    answer.model, now,
                )  # fmt: skip
            except ServeError as e:
                results[i] = e
        await self._agent_stakes(results, items, {i: groups[k][n] for i, (k, n) in slots.items()})
        for result in results:
            if isinstance(result, pb.GetPredictionResponse):
                self._logged(result)
        return pb.BatchPredictResponse(results=[_batch_result(r) for r in results])

    async def _agent_stakes(
        self,
        results: list[pb.GetPredictionResponse | ServeError | None],
        items: dict[int, MarketRequest],
        routed: dict[int, _Routed],
    ) -> None:
        """The agent's stakes into the answers that asked for them (one agent call per
        policy); an item whose agent fails gets the agent's error instead of its answer."""
        asks: dict[int, AgentAsk] = {}
        for i, result in enumerate(results):
            wanted = i in items and items[i].staking.include_agent_stake
            if wanted and isinstance(result, pb.GetPredictionResponse):
                asks[i] = AgentAsk(items[i], routed[i].event.sport, routed[i].rows, result)
        if not asks:
            return
        errors = await self.agent.add_stakes(list(asks.values()))
        for i, error in zip(asks, errors, strict=True):
            if error is not None:
                results[i] = error

    async def _score_group(self, key: tuple[str, str], group: list[_Routed]) -> list[ModelAnswer]:
        """One model call for every market of a group; the answer split back per market."""
        frames = [r.event.model_input(r.item.market_key) for r in group]
        batch = pd.concat(frames, ignore_index=True)
        # A private key per market: the same event twice in a batch stays two markets.
        private = [f"{n}\x1f{r.item.event_key}" for n, r in enumerate(group)]
        batch["event_key"] = np.repeat(private, [len(f) for f in frames])
        try:
            answer = await self._score(*key, batch)
        except ServeError as e:
            return [ModelAnswer(error=e)] * len(group)
        if answer.error is not None or answer.probabilities is None:
            return [answer] * len(group)
        splits = np.split(answer.probabilities, np.cumsum([len(f) for f in frames])[:-1])
        return [ModelAnswer(p, answer.model) for p in splits]

    async def event_of(self, item: FeaturesRequest) -> EventRows:
        """The rows (with features) and prices of a checked request's event, raw or stored."""
        event: EventRows | None
        if item.raw is not None:
            [event] = await asyncio.to_thread(self.features.raw_events, [item.raw])
        elif (event := self.features.cached_event(item.event_key)) is None:
            event = await asyncio.to_thread(self.features.stored_event, item.event_key)
        return event

    async def get_features(self, request: pb.GetFeaturesRequest) -> pb.GetFeaturesResponse:
        item = features_request(request, datetime.now(UTC))
        rows = (await self.event_of(item)).rows
        if item.market_keys:
            known = set(rows["market_key"])
            missing = [k for k in item.market_keys if k not in known]
            if missing:
                raise ResourceNotFound(
                    "market", f"{item.event_key}/{missing[0]}",
                    f"event {item.event_key!r} has no market {missing[0]!r} "
                    f"(it has {sorted(known)})",
                )  # fmt: skip
            rows = rows[rows["market_key"].isin(item.market_keys)]
        values = rows[FEATURE_COLUMNS].to_numpy(dtype=float)
        return pb.GetFeaturesResponse(
            event_key=item.event_key,
            feature_schema_version=FEATURE_SCHEMA_VERSION,
            feature_names=FEATURE_COLUMNS,
            selections=[
                pb.SelectionFeatures(market_key=str(m), selection=str(s), values=v.tolist())
                for m, s, v in zip(rows["market_key"], rows["selection"], values, strict=True)
            ],
        )

    async def poll_model_versions(self) -> None:
        """Note the versions every model deployment serves now (moves the epoch on a swap)."""
        for name, handle in self.models.items():
            try:
                statuses = await asyncio.wait_for(handle.health.remote(), _HEALTH_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - the next poll tries again
                logger.debug("model deployment %s did not answer health: %s", name, e)
                continue
            for status in statuses:
                self.note_version(status.name, status.alias, status.version)

    async def health_check(self) -> pb.HealthCheckResponse:
        statuses: list[ModelStatus] = []
        reachable = True
        for name, handle in self.models.items():
            try:
                statuses.extend(await asyncio.wait_for(handle.health.remote(), _HEALTH_TIMEOUT_S))
            except Exception as e:  # noqa: BLE001 - health reports, it never fails
                logger.warning("model deployment %s did not answer health: %s", name, e)
                reachable = False
        loaded = [s for s in statuses if s.state == "loaded"]
        if not loaded:
            status = pb.SERVING_STATUS_NOT_SERVING
        elif len(loaded) == len(statuses) and reachable:
            status = pb.SERVING_STATUS_SERVING
        else:
            status = pb.SERVING_STATUS_DEGRADED
        return pb.HealthCheckResponse(
            status=status,
            models=[_model_health(s) for s in statuses],
            service_version=service_version(),
            feature_schema_version=FEATURE_SCHEMA_VERSION,
            feature_states=[_state_health(s) for s in self.features.states.describe()],
        )


def _state_health(described: dict[str, Any]) -> pb.FeatureStateHealth:
    health = pb.FeatureStateHealth(
        sport=described["sport"], backend=described["backend"],
        schema_version=described["schema_version"], applied_events=described["applied_events"],
        last_event_key=described["last_event_key"], participants=described["participants"],
        watermark=described["watermark"], version=described["version"],
    )  # fmt: skip
    if described["last_starts_at"] is not None:
        health.last_starts_at.FromDatetime(described["last_starts_at"])
    return health


def _model_health(status: ModelStatus) -> pb.ModelHealth:
    health = pb.ModelHealth(
        name=status.name,
        alias=status.alias,
        version=str(status.version) if status.version is not None else "",
        state=_STATES[status.state],
        loading_version=str(status.loading_version) if status.loading_version else "",
        message=status.message,
    )
    if status.loaded_at is not None:
        health.loaded_at.FromDatetime(status.loaded_at)
    return health


def _batch_result(result: pb.GetPredictionResponse | ServeError | None) -> pb.BatchPredictResult:
    if isinstance(result, pb.GetPredictionResponse):
        return pb.BatchPredictResult(prediction=result)
    error = as_serve_error(result if result is not None else RuntimeError("not answered"))
    violations = [
        pb.FieldViolation(field=v.field, description=v.description)
        for v in getattr(error, "violations", [])
    ]
    return pb.BatchPredictResult(
        error=pb.ItemError(
            code=error.code.value[0], message=str(error), field_violations=violations
        )
    )
