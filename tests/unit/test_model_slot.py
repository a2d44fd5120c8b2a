"""A served model follows its alias: loads in the background, swaps, refuses broken versions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from betting.errors import NotFound
from cluster.artifacts import ArtifactMismatch
from serve.errors import ModelUnavailable
from serve.models import ModelSlot, RegistryLoader


class Registry(RegistryLoader):
    """A registry whose alias points where the test says; version 2 was built for other
    features; loads take a little while."""

    def __init__(self) -> None:
        super().__init__()
        self.version: int | None = 1
        self.loaded: list[int] = []

    def resolve(self, ref: str) -> tuple[str, int]:
        if self.version is None:
            raise NotFound(f"model {ref!r} has no alias")
        return ref.partition("@")[0], self.version

    def load(self, name: str, version: int, folder: Path) -> object:  # type: ignore[override]
        import time

        time.sleep(0.05)
        if version == 2:
            raise ArtifactMismatch("built for feature schema '0'")
        self.loaded.append(version)
        return f"predictor v{version}"


def test_slot_loads_swaps_and_keeps_the_old_version_when_a_new_one_is_refused() -> None:
    async def scenario() -> None:
        registry = Registry()
        slot = ModelSlot("betml-lightgbm-football-1x2", "champion", registry, 0.01)
        slot.start()
        with pytest.raises(ModelUnavailable, match="is loading"):
            slot.require()  # the first load runs in the background
        while slot.current is None:
            await asyncio.sleep(0.01)
        assert (slot.state, slot.require().version, slot.require().predictor) == (
            "loaded",
            1,
            "predictor v1",
        )
        held = slot.require()  # what a batch in flight holds
        registry.version = 2
        while "version 2 cannot be served" not in slot.message:
            await asyncio.sleep(0.01)
        assert slot.require().version == 1 and slot.state == "loaded"
        registry.version = 3
        while slot.require().version != 3:
            await asyncio.sleep(0.01)
        assert held.version == 1 and held.predictor == "predictor v1"  # untouched by the swap
        assert slot.message == "" and registry.loaded == [1, 3]
        registry.version = None  # alias removed: keep serving what is loaded
        await asyncio.sleep(0.05)
        assert slot.require().version == 3 and "alias lookup failed" in slot.message
        status = slot.status()
        assert (status.version, status.state, status.loading_version) == (3, "loaded", None)
        slot.close()
        await asyncio.sleep(0.02)
        assert slot._task is not None and slot._task.cancelled()

    asyncio.run(scenario())


def test_a_model_that_never_loads_is_failed_and_unavailable() -> None:
    async def scenario() -> None:
        registry = Registry()
        registry.version = 2
        slot = ModelSlot("betml-lightgbm-football-1x2", "champion", registry, 0.01)
        slot.start()
        while slot.state != "failed":
            await asyncio.sleep(0.01)
        with pytest.raises(ModelUnavailable, match="failed to load: version 2 cannot be served"):
            slot.require()
        slot.close()

    asyncio.run(scenario())
