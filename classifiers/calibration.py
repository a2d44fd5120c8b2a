"""Calibration of a classifier's market probabilities, fitted and chosen on validation rows.

Every calibrator maps the per-selection probabilities of whole markets to new ones and then
re-normalises them within each market, so the result still sums to 1 per market:

* ``none``: the probabilities as they are;
* ``temperature``: one ``T`` on the market logits, ``softmax(log p / T)`` (``T > 1`` softens an
  over-confident model), ``T`` minimising the validation log loss;
* ``platt``: a logistic regression of ``won`` on ``logit(p)`` per selection;
* ``isotonic``: an increasing step map of ``p`` fitted by isotonic regression (stored by its
  thresholds, applied by linear interpolation), never below :data:`ISOTONIC_FLOOR_RATIO` of the
  model's own probability: on a few hundred validation markets the lowest step is often 0
  (those selections never won there), and a selection called impossible that then wins costs
  more log loss than the whole calibration gains.

:func:`choose_calibration` scores each method by cross-fitting over the validation markets (fit
on some, score on the others), so a flexible method such as isotonic is not chosen just for
fitting its own rows, and then refits the winner on all of them. Calibrators are plain data and
round-trip through :meth:`Calibrator.to_dict` / :func:`calibrator_from_dict`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from betting.errors import InvalidInput
from betting.evaluation import Values, log_loss, normalise_within_markets
from classifiers.config import CALIBRATION_METHODS

logger = logging.getLogger(__name__)

#: Calibrated probabilities are floored here before re-normalising: a calibrator never rules a
#: selection out completely (isotonic maps its lowest bin to 0 when that bin never won).
PROBABILITY_FLOOR = 1e-6
#: Isotonic calibration keeps at least this share of the model's probability.
ISOTONIC_FLOOR_RATIO = 0.25
#: Range searched for the temperature.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Cross-fitting folds of :func:`choose_calibration`.
DEFAULT_FOLDS = 3

Array = np.ndarray


def _finish(q: Array, market_ids: Values) -> Array:
    """Floor, then re-normalise within markets."""
    q = np.clip(np.nan_to_num(np.asarray(q, dtype=float), nan=PROBABILITY_FLOOR), 0.0, 1.0)
    return normalise_within_markets(np.maximum(q, PROBABILITY_FLOOR), market_ids)


def _codes(market_ids: Values) -> Array:
    """Market numbers 0.. in order of first appearance."""
    return np.asarray(pd.factorize(np.asarray(market_ids))[0], dtype=np.int64)


def _clipped(p: Values) -> Array:
    return np.clip(np.asarray(p, dtype=float), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


class Calibrator:
    """Maps market probabilities to calibrated market probabilities."""

    method: ClassVar[str]

    def fit(self, probabilities: Values, won: Values, market_ids: Values) -> Calibrator:
        """Fit on validation rows (``won`` 1/0, one winner per market); returns ``self``."""
        return self

    def transform(self, probabilities: Values) -> Array:
        """Per-row values before re-normalising (non-negative)."""
        return np.asarray(probabilities, dtype=float)

    def apply(self, probabilities: Values, market_ids: Values) -> Array:
        """Calibrated probabilities, summing to 1 within each market."""
        return _finish(self.transform(probabilities), market_ids)

    def params(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"method": ..., **params}``."""
        return {"method": self.method, **self.params()}


@dataclass
class NoCalibration(Calibrator):
    """The probabilities as they are (floored and re-normalised)."""

    method: ClassVar[str] = "none"


@dataclass
class TemperatureCalibration(Calibrator):
    """``softmax(log p / temperature)`` within each market."""

    method: ClassVar[str] = "temperature"
    temperature: float = 1.0

    def fit(self, probabilities: Values, won: Values, market_ids: Values) -> Calibrator:
        logp = np.log(_clipped(probabilities))  # in [log floor, 0], so exp(logp / T) is safe
        y = np.asarray(won, dtype=float)
        codes = _codes(market_ids)

        def nll(log_t: float) -> float:
            z = logp / math.exp(log_t)
            totals = np.bincount(codes, weights=np.exp(z))
            return float(-(y * (z - np.log(totals[codes]))).sum())

        lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
        result = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
        self.temperature = float(math.exp(result.x))
        return self

    def apply(self, probabilities: Values, market_ids: Values) -> Array:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InvalidInput(f"temperature must be positive, got {self.temperature!r}")
        z = np.log(_clipped(probabilities)) / self.temperature
        codes = _codes(market_ids)
        top = np.full(codes.max(initial=-1) + 1, -np.inf)
        np.maximum.at(top, codes, z)
        return _finish(np.exp(z - top[codes]), market_ids)  # the market's best gets exp(0) = 1

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}


@dataclass
class PlattCalibration(Calibrator):
    """``sigmoid(slope * logit(p) + intercept)`` per selection."""

    method: ClassVar[str] = "platt"
    slope: float = 1.0
    intercept: float = 0.0

    def fit(self, probabilities: Values, won: Values, market_ids: Values) -> Calibrator:
        x = np.log(_clipped(probabilities)) - np.log1p(-_clipped(probabilities))
        y = np.asarray(won, dtype=float)

        def nll(theta: Array) -> tuple[float, Array]:
            z = theta[0] * x + theta[1]
            # -[y log s(z) + (1-y) log(1 - s(z))] = logaddexp(0, z) - y z
            loss = float((np.logaddexp(0.0, z) - y * z).sum())
            residual = expit(z) - y
            return loss, np.array([(residual * x).sum(), residual.sum()])

        result = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        self.slope, self.intercept = (float(v) for v in result.x)
        return self

    def transform(self, probabilities: Values) -> Array:
        p = _clipped(probabilities)
        return expit(self.slope * (np.log(p) - np.log1p(-p)) + self.intercept)

    def params(self) -> dict[str, Any]:
        return {"slope": self.slope, "intercept": self.intercept}


@dataclass
class IsotonicCalibration(Calibrator):
    """An increasing map of ``p``, kept as its thresholds and applied by interpolation."""

    method: ClassVar[str] = "isotonic"
    x_thresholds: list[float] | None = None
    y_thresholds: list[float] | None = None

    def fit(self, probabilities: Values, won: Values, market_ids: Values) -> Calibrator:
        regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        regression.fit(np.asarray(probabilities, dtype=float), np.asarray(won, dtype=float))
        self.x_thresholds = [float(v) for v in regression.X_thresholds_]
        self.y_thresholds = [float(v) for v in regression.y_thresholds_]
        return self

    def transform(self, probabilities: Values) -> Array:
        if not self.x_thresholds or not self.y_thresholds:
            raise InvalidInput("isotonic calibration is not fitted (no thresholds)")
        p = np.asarray(probabilities, dtype=float)
        return np.maximum(
            np.interp(p, self.x_thresholds, self.y_thresholds), ISOTONIC_FLOOR_RATIO * p
        )

    def params(self) -> dict[str, Any]:
        return {"x_thresholds": self.x_thresholds, "y_thresholds": self.y_thresholds}


CALIBRATORS: dict[str, type[Calibrator]] = {
    cls.method: cls
    for cls in (NoCalibration, TemperatureCalibration, PlattCalibration, IsotonicCalibration)
}


def make_calibrator(method: str) -> Calibrator:
    """An unfitted calibrator of ``method`` (one of :data:`CALIBRATION_METHODS`)."""
    if method not in CALIBRATORS:
        raise InvalidInput(f"calibration {method!r} is not one of {list(CALIBRATORS)}")
    return CALIBRATORS[method]()


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    """The calibrator :meth:`Calibrator.to_dict` described."""
    if not isinstance(data, dict) or "method" not in data:
        raise InvalidInput(f"calibration description needs a 'method', got {data!r:.200}")
    params = {k: v for k, v in data.items() if k != "method"}
    cls = CALIBRATORS.get(data["method"])
    if cls is None:
        raise InvalidInput(f"calibration {data['method']!r} is not one of {list(CALIBRATORS)}")
    try:
        calibrator = cls(**params)
    except TypeError as e:
        raise InvalidInput(f"calibration {data['method']!r} has bad parameters: {e}") from e
    if isinstance(calibrator, IsotonicCalibration) and (
        not calibrator.x_thresholds
        or calibrator.y_thresholds is None
        or len(calibrator.x_thresholds) != len(calibrator.y_thresholds)
    ):
        raise InvalidInput("isotonic calibration needs as many y as x thresholds, at least one")
    return calibrator


def _fold_of_markets(market_ids: Values, folds: int) -> Array:
    """Per row, its market's fold: markets are dealt round-robin in order of first appearance."""
    return _codes(market_ids) % folds


def _cross_fitted(method: str, p: Array, y: Array, ids: Array, folds: int) -> Array:
    """Out-of-fold calibrated probabilities of ``method``."""
    fold = _fold_of_markets(ids, folds)
    out = np.empty_like(p)
    for k in range(folds):
        held = fold == k
        calibrator = make_calibrator(method).fit(p[~held], y[~held], ids[~held])
        out[held] = calibrator.apply(p[held], ids[held])
    return out


def choose_calibration(
    probabilities: Values,
    won: Values,
    market_ids: Values,
    methods: Sequence[str] = CALIBRATION_METHODS,
    *,
    folds: int = DEFAULT_FOLDS,
) -> tuple[Calibrator, dict[str, float]]:
    """Fit and score each method on validation rows; return the best, refitted on all rows.

    Args:
        probabilities: the model's validation probabilities, summing to 1 per market.
        won: 1/0 per row, one winner per market.
        market_ids: the market of each row.
        methods: candidates; ties go to the earlier one (list the simplest first).
        folds: cross-fitting folds over markets (each method is fitted without a fold and
            scored on it); 1 fits and scores on the same rows. ``"none"`` needs no fitting.

    Returns:
        The chosen calibrator fitted on every row, and each method's validation log loss.

    Raises:
        InvalidInput: an unknown method, no methods, fewer markets than folds, or bad
            probabilities (see :func:`betting.evaluation.log_loss`).
    """
    if not methods:
        raise InvalidInput("choose_calibration needs at least one method")
    for method in methods:
        make_calibrator(method)
    p, y = np.asarray(probabilities, dtype=float), np.asarray(won, dtype=float)
    ids = _codes(market_ids)
    n_markets = int(ids.max(initial=-1)) + 1
    if folds < 1 or (folds > 1 and n_markets < folds):
        raise InvalidInput(f"folds={folds} needs at least 1 and no more than {n_markets} markets")
    log_loss(p, y, ids)  # validates the inputs
    scores: dict[str, float] = {}
    for method in methods:
        if folds == 1 or method == NoCalibration.method:
            calibrated = make_calibrator(method).fit(p, y, ids).apply(p, ids)
        else:
            calibrated = _cross_fitted(method, p, y, ids, folds)
        scores[method] = log_loss(calibrated, y, ids)
    best = min(methods, key=lambda m: scores[m])  # min keeps the first of equals
    logger.info("calibration scores %s: chose %s", scores, best)
    return make_calibrator(best).fit(p, y, ids), scores
