"""The tree-ensemble predictor: loads an artifact and scores selection rows (no training code)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from betting.evaluation import market_ids_of, normalise_within_markets
from cluster.artifacts import ArtifactMeta, check_features
from ensembles.members import Member, load_member

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Stacker:
    """Logistic meta-learner over the members' logits."""

    coef: list[float]
    intercept: float

    def combine(self, member_probs: np.ndarray) -> np.ndarray:
        z = self.intercept + logit(member_probs) @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-z))


@dataclass
class TreePredictor:
    """One tree member, or several stacked; probabilities normalised within each market."""

    meta: ArtifactMeta
    medians: np.ndarray
    members: list[Member]
    stacker: Stacker | None = None
    kinds: list[str] = field(default_factory=list)

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The feature matrix with training medians filled in for missing values."""
        x = features[self.meta.feature_columns].to_numpy(dtype=float, copy=True)
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.take(self.medians, np.nonzero(missing)[1])
        return x

    def member_probabilities(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict(x) for m in self.members])

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        check_features(features, self.meta)
        if features.empty:
            return np.empty(0)
        probs = self.member_probabilities(self.matrix(features))
        raw = self.stacker.combine(probs) if self.stacker else probs[:, 0]
        return normalise_within_markets(np.clip(raw, _EPS, None), market_ids_of(features))

    def save_files(self, folder: Path) -> None:
        preprocessing = {"columns": self.meta.feature_columns, "medians": self.medians.tolist()}
        (folder / "preprocessing.json").write_text(json.dumps(preprocessing))
        for member in self.members:
            member.save(folder)
        stack = {"members": [m.kind for m in self.members]}
        if self.stacker:
            stack |= {"coef": self.stacker.coef, "intercept": self.stacker.intercept}
        (folder / "ensemble.json").write_text(json.dumps(stack))

    @classmethod
    def load_files(cls, folder: Path, meta: ArtifactMeta) -> Self:
        preprocessing = json.loads((folder / "preprocessing.json").read_text())
        stack = json.loads((folder / "ensemble.json").read_text())
        members = [load_member(kind, folder) for kind in stack["members"]]
        stacker = Stacker(stack["coef"], stack["intercept"]) if "coef" in stack else None
        medians = np.asarray(preprocessing["medians"], dtype=float)
        return cls(meta, medians, members, stacker, list(stack["members"]))
