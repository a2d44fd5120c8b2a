"""Cached GetPrediction answers, keyed by what makes an answer what it is.

An answer is a function of the request (event, market, prices, staking), the feature state it
was read from and the model version that scored it. :class:`AnswerCache` keys answers by the
request's deterministic bytes, the sport's feature state version
(:meth:`cluster.feature_store.FeatureStates.version`) and the *model epoch*: a counter the
service moves whenever a model deployment reports another served version (each answer says which
version scored it, and the ingress polls the deployments' health). A settlement moves the state
version and a promotion moves the epoch, so neither can be answered from an older entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from serve.proto.betml.v1 import ml_service_pb2 as pb


@dataclass
class CacheCounts:
    """Hits and misses of a cache, for ``ml_cache_hit_ratio``."""

    hits: int = 0
    misses: int = 0

    @property
    def ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


class AnswerCache:
    """The last ``size`` answers (least recently used go first); 0 turns caching off."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[tuple[bytes, str, int], bytes] = OrderedDict()
        self._guard = threading.Lock()
        self.counts = CacheCounts()

    def get(self, key: tuple[bytes, str, int]) -> pb.GetPredictionResponse | None:
        """A fresh copy of the cached answer (without a prediction id), None on a miss."""
        with self._guard:
            data = self._answers.get(key)
            if data is None:
                self.counts.misses += 1
                return None
            self._answers.move_to_end(key)
            self.counts.hits += 1
        return pb.GetPredictionResponse.FromString(data)

    def put(self, key: tuple[bytes, str, int], response: pb.GetPredictionResponse) -> None:
        if self.size <= 0:
            return
        data = response.SerializeToString()
        with self._guard:
            self._answers[key] = data
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)
