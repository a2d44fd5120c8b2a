"""The outcome-model deployment: registered models by alias, hot-swapped, batched, multiplexed.

One deployment class serves every outcome-model family (ensemble or Keras) through
:func:`cluster.artifacts.load_predictor`; the application binds it once per configured
deployment (``ensemble``, ``classifier``). A model is addressed as ``name@alias``, the
multiplexed model id: each replica keeps a :class:`ModelSlot` per id it has been asked for.

A slot loads the version its alias points at in the background (requests meanwhile get
UNAVAILABLE), then looks the alias up every ``poll_interval_s``: when it has moved, the new
version is downloaded and loaded beside the old one and the slot's reference is swapped in one
assignment. A batch takes the reference once when it starts, so requests in flight finish on
the version they started with and none is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from ray import serve

from betting.errors import InvalidInput, NotFound
from cluster import tracking
from cluster.artifacts import ArtifactMismatch, Predictor, load_predictor
from cluster.logging import configure_logging
from cluster.settings import get_settings
from serve.config import ModelDeploymentArgs
from serve.errors import ModelUnavailable, ResourceNotFound, ServeError, as_serve_error

logger = logging.getLogger(__name__)

ModelState = Literal["loading", "loaded", "failed"]


def model_id(name: str, alias: str) -> str:
    """The multiplexed model id of a registered model's alias."""
    return f"{name}@{alias}"


class RegistryLoader:
    """Resolves aliases in the MLflow registry and loads versions (picklable; bound into the
    deployment so tests can pass their own store).

    Args:
        tracking_uri: MLflow tracking and registry URI; default the replica's settings.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "_client": None}

    def client(self) -> MlflowClient:
        if self._client is None:
            uri = self.tracking_uri or get_settings().mlflow_tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def resolve(self, ref: str) -> tuple[str, int]:
        """``(name, version)`` of ``name@alias`` (raises NotFound / InvalidInput)."""
        return tracking.resolve(ref, client=self.client())

    def load(self, name: str, version: int, folder: Path) -> Predictor:
        """Download version ``version`` of ``name`` into ``folder`` and load it."""
        local = tracking.download_model(f"{name}/{version}", folder, client=self.client())
        return load_predictor(local)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded version of a registered model."""

    name: str
    version: int
    alias: str
    predictor: Predictor
    loaded_at: datetime
    folder: Path


@dataclass(frozen=True)
class ModelStatus:
    """What HealthCheck reports of one slot."""

    name: str
    alias: str
    state: ModelState
    version: int | None = None
    loading_version: int | None = None
    message: str = ""
    loaded_at: datetime | None = None


@dataclass(frozen=True)
class ModelInfo:
    """The version that answered."""

    name: str
    version: int
    alias: str
    feature_schema_version: str


@dataclass(frozen=True)
class ModelAnswer:
    """A model deployment's answer to one request: probabilities per row, or an error."""

    probabilities: np.ndarray | None = None
    model: ModelInfo | None = None
    error: ServeError | None = None


@dataclass
class ModelSlot:
    """One ``name@alias`` on one replica: loaded in the background, swapped when it moves."""

    name: str
    alias: str
    registry: RegistryLoader
    poll_interval_s: float
    pinned: bool = False
    current: LoadedModel | None = None
    state: ModelState = "loading"
    loading_version: int | None = None
    message: str = ""
    closed: bool = False
    _refused_version: int | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="betml-model-")))

    @property
    def ref(self) -> str:
        return model_id(self.name, self.alias)

    def start(self) -> None:
        """Start following the alias (on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._follow(), name=f"follow {self.ref}")

    def require(self) -> LoadedModel:
        """The version to predict with (raises ModelUnavailable while none is loaded)."""
        current = self.current
        if current is not None:
            return current
        if self.state == "failed":
            raise ModelUnavailable(
                f"model {self.ref} failed to load: {self.message}", self.poll_interval_s
            )
        raise ModelUnavailable(f"model {self.ref} is loading; retry shortly", self.poll_interval_s)

    def status(self) -> ModelStatus:
        current = self.current
        return ModelStatus(
            self.name, self.alias, self.state,
            version=current.version if current else None, loading_version=self.loading_version,
            message=self.message, loaded_at=current.loaded_at if current else None,
        )  # fmt: skip

    async def _follow(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("following %s failed; retrying", self.ref)
            await asyncio.sleep(self.poll_interval_s)

    async def check_once(self) -> None:
        """Look the alias up and load its version when it is not the one served."""
        try:
            name, version = await asyncio.to_thread(self.registry.resolve, self.ref)
        except (NotFound, InvalidInput) as e:
            self._note_problem(f"alias lookup failed: {e}")
            return
        current = self.current
        if (current is not None and current.version == version) or version == self._refused_version:
            return
        self.loading_version = version
        folder = self._folder / f"v{version}"
        try:
            predictor = await asyncio.to_thread(self.registry.load, name, version, folder)
        except (ArtifactMismatch, InvalidInput, NotFound) as e:  # this version can never load
            self._refused_version = version
            self._note_problem(f"version {version} cannot be served: {e}")
            shutil.rmtree(folder, ignore_errors=True)
            return
        except Exception as e:  # noqa: BLE001 - e.g. the registry is briefly unreachable
            self._note_problem(f"loading version {version} failed: {e}")
            return
        finally:
            self.loading_version = None
        self.current = LoadedModel(name, version, self.alias, predictor, datetime.now(UTC), folder)
        self.state, self.message = "loaded", ""
        logger.info(
            "serving %s version %d", self.ref, version,
            extra={"model": name, "model_version": version,
                   "previous_version": current.version if current else None},
        )  # fmt: skip
        if current is not None and current.folder != folder:
            shutil.rmtree(current.folder, ignore_errors=True)  # loaded in memory already

    def _note_problem(self, message: str) -> None:
        self.message = message
        if self.current is None:
            self.state = "failed"
        logger.warning("%s: %s", self.ref, message)

    def close(self) -> None:
        """Stop following the alias and drop the files (safe from any thread)."""
        self.closed = True
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        shutil.rmtree(self._folder, ignore_errors=True)

    def __del__(self) -> None:  # the multiplexer calls it when it unloads the model
        if not getattr(self, "pinned", True) and not self.closed:
            self.close()


def _together(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of every request in one frame; markets of different requests may share keys,
    so each request's keys are made its own."""
    if len(frames) == 1:
        return frames[0]
    tagged = [
        f.assign(event_key=f"{i}\x1f" + f["event_key"].astype(str)) for i, f in enumerate(frames)
    ]
    return pd.concat(tagged, ignore_index=True)


def _split_ref(ref: str, default_alias: str) -> tuple[str, str]:
    name, _, alias = ref.partition("@")
    return name.strip(), (alias.strip() or default_alias)


class SlotHost:
    """What a deployment of registered models shares: its :class:`ModelSlot` per ``name@alias``,
    the preloaded ones started at once, the others on first use, and their health. A deployment
    class inherits it and wraps :meth:`_open_slot` in its own ``@serve.multiplexed`` method."""

    registry: RegistryLoader
    slots: dict[str, ModelSlot]

    def _start_slots(
        self, registry: RegistryLoader, alias: str, poll_interval_s: float, preload: list[str]
    ) -> None:
        """Set the replica up (logging, the registry) and start the preloaded models."""
        settings = get_settings()
        configure_logging(settings.log_level, settings.effective_log_format)
        # A replica's log is no terminal: no download progress bars in it.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.registry = registry
        self._default_alias = alias
        self._poll_interval_s = poll_interval_s
        self.slots = {}
        for ref in preload:
            name, ref_alias = _split_ref(ref, alias)
            self._new_slot(name, ref_alias, pinned=True)

    def _new_slot(self, name: str, alias: str, *, pinned: bool = False) -> ModelSlot:
        slot = ModelSlot(name, alias, self.registry, self._poll_interval_s, pinned=pinned)
        slot.start()
        self.slots[slot.ref] = slot
        return slot

    async def _open_slot(self, ref: str) -> ModelSlot:
        """The slot of ``name@alias`` (the default alias when none), created on first use.

        Raises:
            ResourceNotFound: no such registered model or alias.
        """
        self.slots = {k: s for k, s in self.slots.items() if not s.closed}
        if (slot := self.slots.get(ref)) is not None:
            return slot
        name, alias = _split_ref(ref, self._default_alias)
        try:
            await asyncio.to_thread(self.registry.resolve, model_id(name, alias))
        except (NotFound, InvalidInput) as e:
            raise ResourceNotFound("model", model_id(name, alias), str(e)) from e
        return self.slots.get(ref) or self._new_slot(name, alias)

    async def health(self) -> list[ModelStatus]:
        """The state of every model this replica serves or loads."""
        return [slot.status() for slot in self.slots.values() if not slot.closed]


@serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5})
class OutcomeModel(SlotHost):
    """Scores selection rows with registered outcome models (see the module docstring).

    Args:
        args: the deployment's part of :class:`~serve.config.ServeArgs`.
        registry: where models come from.
    """

    async def __init__(self, args: ModelDeploymentArgs, registry: RegistryLoader) -> None:  # type: ignore[misc]
        self.args = args
        self._start_slots(registry, args.alias, args.poll_interval_s, args.preload)
        self.predict_batch.set_max_batch_size(args.max_batch_size)  # type: ignore[attr-defined]
        self.predict_batch.set_batch_wait_timeout_s(args.batch_wait_timeout_s)  # type: ignore[attr-defined]

    @serve.multiplexed(max_num_models_per_replica=8)
    async def get_model(self, ref: str) -> ModelSlot:
        """The slot of ``name@alias``, created (and its first load started) on first use.

        Raises:
            ResourceNotFound: no such registered model or alias.
        """
        return await self._open_slot(ref)

    async def predict(self, rows: pd.DataFrame) -> ModelAnswer:
        """Probabilities of ``rows`` (``event_key``, ``market_key`` and the feature columns of
        whole markets) by the model named by the request's multiplexed model id."""
        return await self.predict_batch(rows)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict_batch(self, frames: list[pd.DataFrame]) -> list[ModelAnswer]:
        """One vectorised ``predict_proba`` over every request of the batch (all of one model:
        Serve splits batches by multiplexed model id)."""
        ref = serve.get_multiplexed_model_id()
        try:
            if not ref:
                raise InvalidInput("no model named: send a multiplexed model id name@alias")
            model = (await self.get_model(ref)).require()
        except Exception as e:  # noqa: BLE001 - every request of the batch gets the error
            error = as_serve_error(e, field="model_name")
            return [ModelAnswer(error=error) for _ in frames]
        sizes = np.cumsum([len(f) for f in frames])[:-1]
        try:
            probabilities = model.predictor.predict_proba(_together(frames))
        except InvalidInput as e:
            error = as_serve_error(e, field="features")
            return [ModelAnswer(error=error) for _ in frames]
        info = ModelInfo(
            model.name, model.version, model.alias, model.predictor.meta.feature_schema_version
        )
        return [ModelAnswer(p, info) for p in np.split(np.asarray(probabilities, float), sizes)]
