import json
import time

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from soccerpredict.config import ModelParams
from soccerpredict.metrics import log_loss, rps_average
from soccerpredict.models import (
    Calibrator,
    choose_calibration,
    feature_importance,
    fit_calibrator,
    load_booster,
    predict_proba,
    save_booster,
    train_booster,
)

FAST = ModelParams(
    learning_rate=0.1, n_estimators=300, early_stopping_rounds=20, min_child_weight=5.0
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sample(p, rng):
    u = rng.random(len(p))[:, None]
    return (u > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)


def _problem(n, seed=0):
    """Strength difference drives H vs A, |diff| small raises draws; one noise column."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"diff": rng.normal(size=n), "noise": rng.normal(size=n), "other": rng.normal(size=n)}
    )
    logits = np.column_stack(
        [1.5 * X["diff"], 0.3 - 0.8 * X["diff"].abs(), -1.5 * X["diff"] + 0.2 * X["other"]]
    )
    return X, _sample(_softmax(logits), rng)


@pytest.fixture(scope="module")
def trained():
    X, y = _problem(3000)
    Xtr, ytr, Xva, yva, Xte, yte = (
        X[:2000],
        y[:2000],
        X[2000:2500],
        y[2000:2500],
        X[2500:],
        y[2500:],
    )
    start = time.perf_counter()
    booster = train_booster(Xtr, ytr, Xva, yva, FAST)
    elapsed = time.perf_counter() - start
    return booster, elapsed, (Xtr, ytr, Xte, yte)


def test_beats_base_rates(trained):  # speed lives in benchmarks/, never in a timed unit test
    booster, _, (_, ytr, Xte, yte) = trained
    probs = predict_proba(booster, Xte)
    base = np.bincount(ytr, minlength=3) / len(ytr)
    assert log_loss(probs, yte) < log_loss(np.tile(base, (len(yte), 1)), yte) - 0.05
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert probs.shape == (len(Xte), 3)


def test_early_stopping_uses_best_iteration(trained):
    booster, _, (_, _, Xte, _) = trained
    assert booster.best_iteration < FAST.n_estimators - 1
    full = booster.predict(xgb.DMatrix(Xte), iteration_range=(0, booster.num_boosted_rounds()))
    best = predict_proba(booster, Xte)
    assert not np.allclose(full, best)


def test_feature_importance(trained):
    imp = feature_importance(trained[0])
    assert imp.sum() == pytest.approx(1.0)
    assert imp.index[0] == "diff"
    assert imp.is_monotonic_decreasing
    assert set(imp.index) == {"diff", "noise", "other"}


@pytest.mark.parametrize("suffix", [".ubj", ".json"])
def test_save_load_identical(trained, tmp_path, suffix):
    booster, _, (_, _, Xte, _) = trained
    path = save_booster(booster, tmp_path / "sub" / f"model{suffix}")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    loaded = load_booster(path)
    np.testing.assert_array_equal(predict_proba(loaded, Xte), predict_proba(booster, Xte))


def test_save_rejects_unknown_suffix(trained, tmp_path):
    with pytest.raises(ValueError):
        save_booster(trained[0], tmp_path / "model.pkl")


def test_nan_features_and_callbacks():
    X, y = _problem(1200, seed=3)
    X = X.copy()
    X.loc[X.sample(frac=0.2, random_state=0).index, "diff"] = np.nan

    class Recorder(xgb.callback.TrainingCallback):
        def __init__(self):
            super().__init__()
            self.rounds: list[tuple[int, float]] = []

        def after_iteration(self, model, epoch, evals_log):
            self.rounds.append((epoch, evals_log["val"]["mlogloss"][-1]))
            return False

    rec = Recorder()
    booster = train_booster(X[:900], y[:900], X[900:], y[900:], FAST, nthread=1, callbacks=[rec])
    assert len(rec.rounds) == booster.num_boosted_rounds()
    assert [r for r, _ in rec.rounds] == list(range(len(rec.rounds)))
    probs = predict_proba(booster, X[900:])
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


# --- calibration ---------------------------------------------------------------------------


def _overconfident(n, temperature, seed=0):
    """True probs softmax(z); the 'model' reports softmax(z * T), i.e. over-confident by T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.0, size=(n, 3))
    y = _sample(_softmax(z), rng)
    return _softmax(z * temperature), _softmax(z), y


def test_temperature_recovers_t():
    reported, _, y = _overconfident(20000, 2.0)
    cal = fit_calibrator("temperature", reported, y)
    assert cal.params["temperature"] == pytest.approx(2.0, rel=0.08)
    assert log_loss(cal.apply(reported), y) < log_loss(reported, y)


def test_isotonic_rows_sum_to_one():
    reported, _, y = _overconfident(3000, 2.0)
    cal = fit_calibrator("isotonic", reported, y)
    out = cal.apply(reported)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert (out > 0).all()
    edge = cal.apply(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # outside fitted range
    np.testing.assert_allclose(edge.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["none", "isotonic", "temperature"])
def test_round_trip(method):
    reported, _, y = _overconfident(1000, 1.5, seed=4)
    cal = fit_calibrator(method, reported, y)
    restored = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert restored.method == method
    np.testing.assert_array_equal(restored.apply(reported), cal.apply(reported))


def test_choose_calibration_prefers_fix_on_miscalibrated():
    reported, _, y = _overconfident(4000, 2.5, seed=5)
    methods = ["none", "isotonic", "temperature"]
    cal, scores = choose_calibration(methods, reported, y)
    assert set(scores) == set(methods)
    assert cal.method != "none"
    assert scores[cal.method] == min(scores.values())
    assert scores["none"] > scores[cal.method]


def test_choose_calibration_on_calibrated_data():
    _, true_p, y = _overconfident(4000, 1.0, seed=6)
    methods = ["none", "isotonic", "temperature"]
    cal, scores = choose_calibration(methods, true_p, y, n_folds=4, seed=1)
    assert set(scores) == set(methods)
    assert scores[cal.method] == min(scores.values())
    # already calibrated: isotonic cannot beat the identity out of sample by any real margin
    assert scores["none"] <= scores["isotonic"] + 1e-3
    if cal.method == "temperature":
        assert cal.params["temperature"] == pytest.approx(1.0, abs=0.1)


def test_unknown_method_rejected():
    with pytest.raises(ValueError):
        fit_calibrator("platt", np.ones((3, 3)) / 3, np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        choose_calibration([], np.ones((3, 3)) / 3, np.array([0, 1, 2]))


@pytest.mark.parametrize("metric", ["mlogloss", "rps"])
def test_early_stopping_watches_the_named_metric(metric):
    X, y = _problem(3000, seed=3)
    params = FAST.model_copy(update={"early_stopping_metric": metric, "learning_rate": 0.3})
    booster = train_booster(X[:2000], y[:2000], X[2000:], y[2000:], params)
    score = rps_average if metric == "rps" else log_loss
    per_round = [
        score(booster.predict(xgb.DMatrix(X[2000:]), iteration_range=(0, it + 1)), y[2000:])
        for it in range(booster.num_boosted_rounds())
    ]
    # the best iteration is that metric's minimum over the rounds, wherever the other one lies
    assert booster.best_iteration == int(np.argmin(per_round))
    assert booster.best_score == pytest.approx(min(per_round), rel=1e-4)


def test_fast_prediction_equals_the_dmatrix_prediction(trained):
    booster, _, (_, _, Xte, _) = trained

    def reference(X):
        raw = booster.predict(
            xgb.DMatrix(X.astype(np.float64), missing=np.nan),
            iteration_range=(0, booster.best_iteration + 1),
        )
        raw = np.asarray(raw, dtype=np.float64)
        return raw / raw.sum(axis=1, keepdims=True)

    with_nans = Xte.copy()
    with_nans.iloc[::7, 1] = np.nan  # missing values take the learned default branch in both
    np.testing.assert_array_equal(predict_proba(booster, Xte), reference(Xte))
    np.testing.assert_array_equal(predict_proba(booster, with_nans), reference(with_nans))
    with pytest.raises(ValueError, match="not the model's"):
        predict_proba(booster, Xte[list(reversed(Xte.columns))])
