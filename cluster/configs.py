"""Experiment configs: each ``configs/*.yaml`` file is loaded into one pydantic model."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from betting.errors import ConfigError
from cluster.training import DataConfig

M = TypeVar("M", bound=BaseModel)

#: Model families by the name the CLI and configs use: (fit function, predictor class), as
#: import paths so the cluster package never imports a family's code itself.
FAMILIES: dict[str, tuple[str, str]] = {
    "ensemble": ("ensembles.fit:fit_ensemble", "ensembles.predictor:TreePredictor"),
    "classifier": ("classifiers.fit:fit_classifier", "classifiers.predictor:KerasPredictor"),
}


class TrainConfig(BaseModel):
    """``configs/train/*.yaml``: one model fitted, judged on the holdout and registered."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["ensemble", "classifier"]
    """Which model family fits the model."""
    name: str | None = None
    """Family name in the registered model name; default: the ensemble kind or ``keras``."""
    data: DataConfig = Field(default_factory=DataConfig)
    """Which events to train and judge on."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The family's hyperparameters (see ensembles/config.py, classifiers/config.py)."""
    seed: int = 0
    """Random seed."""
    register_model: bool = True
    """Register the model as the challenger of ``betml-<name>-<sport>-<market>``."""

    def registered_family(self) -> str:
        return registered_family_name(self.family, self.name, self.params)


def registered_family_name(family: str, name: str | None, params: dict[str, Any]) -> str:
    """The family part of registered model names: ``name`` when set, else the ensemble kind
    (``lightgbm``, ``random-forest``, ``stacked``...) or ``keras`` for the classifier."""
    if name:
        return name
    if family == "ensemble":
        return str(params.get("kind", "lightgbm")).replace("_", "-")
    return "keras"


def load_config(path: Path, model: type[M]) -> M:
    """Read a YAML file into ``model``; errors name the file and the bad field."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e


def family_functions(family: str) -> tuple[Any, str]:
    """The fit function of ``family`` and the import path of its predictor."""
    fit_path, predictor_path = FAMILIES[family]
    module, _, name = fit_path.partition(":")
    return getattr(importlib.import_module(module), name), predictor_path
