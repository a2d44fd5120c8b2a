"""Calibration of market probabilities: each method fits, keeps market sums, round-trips, and
the chooser picks by cross-fitted validation log loss."""

from __future__ import annotations

import numpy as np
import pytest

from betting.errors import InvalidInput
from betting.evaluation import log_loss
from classifiers.calibration import (
    CALIBRATORS,
    ISOTONIC_FLOOR_RATIO,
    TemperatureCalibration,
    calibrator_from_dict,
    choose_calibration,
    make_calibrator,
)


def markets(n_markets: int, size: int, *, sharpen: float, seed: int = 0):
    """True probabilities of ``n_markets`` markets, outcomes drawn from them, and a model's
    probabilities ``softmax(sharpen * log p)`` (``sharpen > 1`` is over-confident)."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(size, 2.0), size=n_markets)
    winners = np.array([rng.choice(size, p=row) for row in truth])
    won = np.zeros_like(truth)
    won[np.arange(n_markets), winners] = 1.0
    model = truth**sharpen
    model /= model.sum(axis=1, keepdims=True)
    ids = np.repeat(np.arange(n_markets), size)
    return model.ravel(), won.ravel(), ids, truth.ravel()


def sums(p: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return np.bincount(ids, weights=p)


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
def test_every_method_keeps_markets_summing_to_one_and_round_trips(method: str) -> None:
    p, won, ids, _ = markets(300, 3, sharpen=1.8)
    calibrator = make_calibrator(method).fit(p, won, ids)
    q = calibrator.apply(p, ids)
    assert np.allclose(sums(q, ids), 1.0) and (q > 0).all()
    again = calibrator_from_dict(calibrator.to_dict())
    assert type(again) is type(calibrator)
    assert np.allclose(again.apply(p, ids), q)


def test_temperature_undoes_over_confidence() -> None:
    p, won, ids, truth = markets(4000, 3, sharpen=2.0, seed=1)
    calibrator = TemperatureCalibration().fit(p, won, ids)
    # softmax(2 log t) needs T = 2 to get back to the truth.
    assert calibrator.temperature == pytest.approx(2.0, rel=0.15)
    assert np.abs(calibrator.apply(p, ids) - truth).mean() < np.abs(p - truth).mean() / 2


def test_choose_prefers_a_correction_for_a_miscalibrated_model() -> None:
    p, won, ids, _ = markets(2000, 3, sharpen=2.5, seed=2)
    chosen, scores = choose_calibration(p, won, ids)
    assert set(scores) == {"none", "temperature", "platt", "isotonic"}
    assert chosen.method != "none"
    assert scores[chosen.method] == min(scores.values()) < scores["none"]
    assert log_loss(chosen.apply(p, ids), won, ids) < log_loss(p, won, ids)


def test_choose_keeps_a_calibrated_model_close_to_as_it_is() -> None:
    p, won, ids, _ = markets(2000, 3, sharpen=1.0, seed=3)
    chosen, scores = choose_calibration(p, won, ids, ("none", "temperature"))
    # Nothing to fix: the fitted temperature stays near 1 and the scores near each other.
    assert abs(scores["temperature"] - scores["none"]) < 0.01
    if chosen.method == "temperature":
        assert chosen.temperature == pytest.approx(1.0, abs=0.15)


def test_isotonic_never_rules_a_selection_out() -> None:
    # The lowest-probability selections never win here: isotonic maps them to 0, the floor
    # keeps a share of the model's own probability.
    p = np.array([0.7, 0.2, 0.1] * 50)
    won = np.array([1.0, 0.0, 0.0] * 50)
    ids = np.repeat(np.arange(50), 3)
    q = make_calibrator("isotonic").fit(p, won, ids).apply(p, ids)
    assert np.allclose(sums(q, ids), 1.0)
    # 0.025 before re-normalising the market (1.0 + 0.05 + 0.025).
    assert np.allclose(q[2::3], ISOTONIC_FLOOR_RATIO * 0.1 / 1.075)


def test_bad_calibration_input_is_refused() -> None:
    p, won, ids, _ = markets(10, 3, sharpen=1.0)
    with pytest.raises(InvalidInput, match="not one of"):
        make_calibrator("beta")
    with pytest.raises(InvalidInput, match="not one of"):
        choose_calibration(p, won, ids, ("none", "beta"))
    with pytest.raises(InvalidInput, match="at least one"):
        choose_calibration(p, won, ids, ())
    with pytest.raises(InvalidInput, match="folds"):
        choose_calibration(p, won, ids, folds=11)
    with pytest.raises(InvalidInput, match="method"):
        calibrator_from_dict({"temperature": 2.0})
    with pytest.raises(InvalidInput, match="bad parameters"):
        calibrator_from_dict({"method": "platt", "gradient": 1.0})
    with pytest.raises(InvalidInput, match="thresholds"):
        calibrator_from_dict({"method": "isotonic", "x_thresholds": [0.1], "y_thresholds": []})
    with pytest.raises(InvalidInput, match="temperature must be positive"):
        TemperatureCalibration(temperature=0.0).apply(p, ids)
