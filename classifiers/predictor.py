"""The Keras classifier as a betml predictor: load it, score selections, save it.

An artifact folder holds ``model.keras`` (the network, built-in layers only), ``preprocessing.json``
(the fitted imputation and scaling, and the widest market the model takes) and
``calibration.json`` (the chosen calibrator), next to ``betml_artifact.json`` written by
:func:`cluster.artifacts.save_artifact`. Serving imports this module, never :mod:`classifiers.fit`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from betting.errors import InvalidInput, NotFound
from betting.evaluation import market_ids_of
from classifiers.calibration import Calibrator, NoCalibration, calibrator_from_dict
from classifiers.model import Preprocessing, market_layout, market_prior, predict_padded
from cluster.artifacts import ArtifactMeta, check_features

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

FAMILY = "keras"
PREDICTOR = "classifiers.predictor:KerasPredictor"
MODEL_FILE = "model.keras"
PREPROCESSING_FILE = "preprocessing.json"
CALIBRATION_FILE = "calibration.json"


class KerasPredictor:
    """Win probabilities of every selection from the market-softmax network, calibrated.

    Attributes:
        meta: the artifact description (family ``"keras"``).
        model: the compiled Keras model (inputs ``features``, ``mask``).
        preprocessing: the fitted imputation and scaling of ``meta.feature_columns``.
        calibrator: applied to the network's probabilities, market by market.
        max_selections: the widest market the model was trained on; wider ones are refused.
        use_prior: whether the network adds the market's log implied probability to its logits.
    """

    def __init__(
        self,
        meta: ArtifactMeta,
        model: keras.Model,
        preprocessing: Preprocessing,
        max_selections: int,
        use_prior: bool = True,
        calibrator: Calibrator | None = None,
    ) -> None:
        if list(preprocessing.feature_columns) != list(meta.feature_columns):
            raise InvalidInput(
                f"preprocessing columns {preprocessing.feature_columns} differ from the "
                f"artifact's feature columns {meta.feature_columns}"
            )
        self.meta = meta
        self.model = model
        self.preprocessing = preprocessing
        self.max_selections = int(max_selections)
        self.use_prior = bool(use_prior)
        self.calibrator = calibrator or NoCalibration()

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Per-row network probabilities before calibration (they sum to 1 per market)."""
        check_features(features, self.meta)
        layout = market_layout(features, self.max_selections)
        if layout.n_rows == 0:
            return np.zeros(0)
        x = layout.pad(self.preprocessing.transform(features))
        prior = layout.pad(market_prior(features) if self.use_prior else np.zeros(layout.n_rows))
        padded = predict_padded(self.model, x, layout.mask(), prior).astype(np.float64)
        padded /= padded.sum(axis=1, keepdims=True)  # exact sums after float32 softmax
        return layout.scatter(padded)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated per-row win probabilities, in ``features``' row order, summing to 1 per
        market (rows of one market share ``event_key`` and ``market_key``).

        Raises:
            InvalidInput: a needed column is missing, a feature is not numeric, or a market has
                more selections than the model was trained for (the market is named).
        """
        raw = self.raw_proba(features)
        if len(raw) == 0:
            return raw
        return self.calibrator.apply(raw, market_ids_of(features))

    def save_files(self, folder: Path) -> None:
        folder = Path(folder)
        self.model.save(folder / MODEL_FILE)
        preprocessing = {
            **self.preprocessing.to_dict(),
            "max_selections": self.max_selections,
            "market_prior": self.use_prior,
        }
        (folder / PREPROCESSING_FILE).write_text(json.dumps(preprocessing, indent=1))
        (folder / CALIBRATION_FILE).write_text(json.dumps(self.calibrator.to_dict(), indent=1))

    @classmethod
    def load_files(cls, folder: Path, meta: ArtifactMeta) -> Self:
        import keras

        folder = Path(folder)
        preprocessing = _read_json(folder / PREPROCESSING_FILE)
        calibration = _read_json(folder / CALIBRATION_FILE)
        model_path = folder / MODEL_FILE
        if not model_path.is_file():
            raise NotFound(f"{folder} has no {MODEL_FILE}")
        try:
            model = keras.saving.load_model(model_path, compile=False)
            max_selections = int(preprocessing["max_selections"])
            use_prior = bool(preprocessing["market_prior"])
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise InvalidInput(f"{folder} holds an unreadable Keras classifier: {e}") from e
        logger.info("loaded keras classifier %s/%s from %s", meta.sport, meta.market, folder)
        return cls(
            meta,
            model,
            Preprocessing.from_dict(preprocessing),
            max_selections,
            use_prior,
            calibrator_from_dict(calibration),
        )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise NotFound(f"{path.parent} has no {path.name}")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise InvalidInput(f"{path} is not valid JSON: {e}") from e
