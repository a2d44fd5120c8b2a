"""The Keras classifier: the masked market softmax, training with early stopping and
calibration, the artifact round trip, and racing fields of varying size."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from betting.errors import ConfigError, InvalidInput
from betting.features import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION, build_features
from betting.frames import selection_frame
from betting.simulate import simulate
from classifiers.config import ClassifierParams
from classifiers.fit import CONFIG_CALIBRATION, METRIC_VALID_LOG_LOSS, fit_classifier
from classifiers.model import build_network
from classifiers.predictor import PREDICTOR, KerasPredictor
from cluster.artifacts import ArtifactMeta, load_predictor, save_artifact
from cluster.training import DataConfig, split_holdout, train_and_log

#: Small and quick: a few epochs of a narrow net.
SMALL = {"hidden_layers": 1, "width": 16, "epochs": 8, "patience": 3, "batch_size": 32}
DATA = DataConfig(sport="football", market="1x2", holdout_seasons=1)


def _table(sport: str, market: str, seasons: int, seed: int, **kwargs: int) -> pd.DataFrame:
    frame = build_features(selection_frame(simulate(sport, seasons, seed=seed, **kwargs)))
    return frame[(frame["market_key"] == market) & frame["won"].notna()].reset_index(drop=True)


@pytest.fixture(scope="module")
def football() -> pd.DataFrame:
    """Three simulated seasons of one 12-team league, 1X2 markets with features."""
    return _table("football", "1x2", 3, seed=11, teams=12)


def _meta(sport: str = "football", market: str = "1x2") -> ArtifactMeta:
    return ArtifactMeta(
        family="keras", predictor=PREDICTOR, sport=sport, market=market,
        feature_columns=list(FEATURE_COLUMNS), feature_schema_version=FEATURE_SCHEMA_VERSION,
    )  # fmt: skip


def _market_sums(table: pd.DataFrame, p: np.ndarray) -> np.ndarray:
    return table.assign(p=p).groupby(["event_key", "market_key"])["p"].sum().to_numpy()


def test_masked_softmax_ignores_padding_and_selection_order() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = build_network(4, ClassifierParams(hidden_layers=1, width=8, dropout=0.0))
    rng = np.random.default_rng(0)
    # The output layer starts at zero (see the next test): give it weights to test with.
    model.get_layer("logit").set_weights([rng.normal(size=(8, 1)), np.zeros(1)])
    x = rng.normal(size=(1, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0]], dtype=np.float32)
    prior = np.log(np.array([[0.5, 0.3, 0.2, 1.0, 1.0]], dtype=np.float32))
    p = np.asarray(model([x, mask, prior]))
    assert np.allclose(p[0, 3:], 0.0) and p[0].sum() == pytest.approx(1.0, abs=1e-6)
    # What sits in the padding does not matter, nor does the width of the padding.
    noisy = x.copy()
    noisy[0, 3:] = 100.0
    assert np.allclose(np.asarray(model([noisy, mask, prior]))[0, :3], p[0, :3], atol=1e-6)
    narrow = np.asarray(model([x[:, :3], mask[:, :3], prior[:, :3]]))
    assert np.allclose(narrow[0], p[0, :3], atol=1e-6)
    # Reordering the selections reorders their probabilities and nothing else.
    order = [2, 0, 1]
    swapped = np.asarray(model([x[:, order], mask[:, :3], prior[:, order]]))
    assert np.allclose(swapped[0], p[0, order], atol=1e-6)


def test_an_untrained_network_starts_from_the_market(football: pd.DataFrame) -> None:
    import keras

    from classifiers.model import Preprocessing, market_layout, market_prior, predict_padded

    keras.utils.set_random_seed(0)
    model = build_network(len(FEATURE_COLUMNS), ClassifierParams())
    rows = football.head(300)
    layout = market_layout(rows)
    x = layout.pad(Preprocessing.fit(rows, FEATURE_COLUMNS).transform(rows))
    p = layout.scatter(predict_padded(model, x, layout.mask(), layout.pad(market_prior(rows))))
    implied = rows["close_implied"].to_numpy()
    fair = implied / rows.assign(i=implied).groupby(["event_key", "market_key"])["i"].transform(
        "sum"
    )
    assert np.allclose(p, fair, atol=1e-5)


def test_training_through_the_pipeline_round_trips(
    football: pd.DataFrame, mlflow_store: object
) -> None:
    result = train_and_log(
        "keras", fit_classifier, SMALL, DATA, predictor_path=PREDICTOR, table=football,
        register=False,
    )  # fmt: skip
    model = load_predictor(result.artifact)
    assert isinstance(model, KerasPredictor)
    _, holdout = split_holdout(football, 1)
    p = model.predict_proba(holdout)
    assert np.allclose(_market_sums(holdout, p), 1.0) and (p > 0).all()
    assert result.holdout_log_loss == pytest.approx(float(result.report.loc["model", "log_loss"]))
    # The run's model file gives what the trained model gave.
    assert np.isfinite(result.holdout_log_loss) and result.holdout_log_loss < 1.3
    assert model.meta.config[CONFIG_CALIBRATION] in {"none", "temperature", "platt", "isotonic"}
    assert model.meta.config["params"]["width"] == 16
    assert METRIC_VALID_LOG_LOSS in model.meta.metrics
    summary = json.loads(next(result.artifact.parent.glob("*-summary/training_summary.json"))
                         .read_text())  # fmt: skip
    assert summary["family"] == "keras" and summary["validation"]["train/epochs"] <= 8
    assert summary["calibration"] == model.meta.config[CONFIG_CALIBRATION]


def test_same_seed_same_model_and_reload_gives_the_same_numbers(
    football: pd.DataFrame, tmp_path: object
) -> None:
    train, holdout = split_holdout(football, 1)
    first = fit_classifier(train, SMALL, _meta(), seed=3)
    second = fit_classifier(train, SMALL, _meta(), seed=3)
    p = first.predict_proba(holdout)
    assert np.allclose(p, second.predict_proba(holdout), atol=1e-6)
    folder = save_artifact(first, tmp_path / "keras")  # type: ignore[operator]
    assert np.allclose(load_predictor(folder).predict_proba(holdout), p, atol=1e-6)


def test_racing_fields_of_varying_size() -> None:
    table = _table("racing", "win", 2, seed=5, events_per_season=120)
    sizes = table.groupby("event_key").size()
    assert sizes.nunique() > 1, "the simulator should run fields of different sizes"
    train, holdout = split_holdout(table, 1)
    model = fit_classifier(train, {**SMALL, "calibration": "temperature"},
                           _meta("racing", "win"), seed=0)  # fmt: skip
    p = model.predict_proba(holdout)
    assert np.allclose(_market_sums(holdout, p), 1.0) and (p > 0).all()
    assert model.meta.config[CONFIG_CALIBRATION] == "temperature"
    # A field wider than any seen in training is refused by name, not silently truncated.
    wide = holdout[holdout["event_key"] == holdout["event_key"].iloc[0]]
    extra = pd.concat([wide] * (model.max_selections // len(wide) + 1), ignore_index=True)
    with pytest.raises(InvalidInput, match="selections, more than"):
        model.predict_proba(extra)


def test_bad_parameters_and_tables_are_refused(football: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="width"):
        fit_classifier(football, {"width": 2}, _meta())
    with pytest.raises(ConfigError, match="layers"):
        fit_classifier(football, {"layers": 2}, _meta())
    with pytest.raises(InvalidInput, match="lacks column"):
        fit_classifier(football.drop(columns="starts_at"), SMALL, _meta())
    with pytest.raises(InvalidInput, match="too few"):
        fit_classifier(football.head(6), SMALL, _meta())
