"""Hyperparameters of betml's Keras outcome classifier (no TensorFlow import here)."""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

CalibrationChoice: TypeAlias = Literal["auto", "none", "platt", "isotonic", "temperature"]
#: The calibration methods ``"auto"`` chooses from, simplest first (ties go to the simpler).
CALIBRATION_METHODS: tuple[str, ...] = ("none", "temperature", "platt", "isotonic")


class ClassifierParams(BaseModel):
    """How one Keras classifier is built and trained; the defaults suit a CPU and a few seasons.

    The network is a per-selection MLP (``hidden_layers`` x ``width``) whose logits are turned
    into probabilities by a softmax within each market (see :mod:`classifiers.model`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    hidden_layers: int = Field(2, ge=1, le=4)
    """Number of hidden Dense layers of the per-selection MLP."""

    width: int = Field(32, ge=8, le=512)
    """Units of each hidden layer."""

    dropout: float = Field(0.1, ge=0.0, le=0.7)
    """Dropout rate after each hidden layer (training only)."""

    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    """Adam learning rate."""

    batch_size: int = Field(64, ge=1, le=65536)
    """Markets (not selections) per gradient step."""

    epochs: int = Field(60, ge=1, le=10000)
    """Most passes over the training markets; early stopping usually ends sooner."""

    patience: int = Field(6, ge=0, le=1000)
    """Epochs without a better validation loss before training stops (best weights are kept)."""

    l2: float = Field(1e-4, ge=0.0, le=1.0)
    """L2 penalty on the kernels of every Dense layer."""

    market_prior: bool = True
    """Add the market's log implied probability to each logit (weight learned, starting at 1),
    so the net learns the market's errors instead of the whole price."""

    calibration: CalibrationChoice = "auto"
    """Calibration after training: ``"none"``, ``"platt"``, ``"isotonic"``, ``"temperature"``,
    or ``"auto"`` for the one with the best (cross-fitted) validation log loss."""

    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of the training markets, the latest by start time, held out for early stopping and
    for fitting and choosing the calibration."""

    seed: int = Field(0, ge=0)
    """Seed of weights, dropout and shuffling (Keras' global seed); used when the trainer is given
    no seed of its own."""
