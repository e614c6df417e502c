"""XGBoost multi-class model: train with early stopping, predict at the best iteration, persist.

Probability columns follow `OUTCOMES` ("H", "D", "A"); labels are `outcome_index` integers.
Missing feature values stay NaN: XGBoost learns a default split direction for them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import xgboost as xgb

from soccerpredict.config import ModelParams
from soccerpredict.data.contract import OUTCOMES
from soccerpredict.metrics.scoring import rps_average

_SAVE_SUFFIXES = (".ubj", ".json")


def booster_params(params: ModelParams, nthread: int = 2) -> dict[str, Any]:
    """The xgboost.train parameter dict; kept separate so trials can log exactly what was used."""
    return {
        "objective": "multi:softprob",
        "num_class": len(OUTCOMES),
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "seed": params.seed,
        "nthread": nthread,
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "lambda": params.reg_lambda,
        "alpha": params.reg_alpha,
    }


def _dmatrix(
    X: pd.DataFrame, y: np.ndarray | pd.Series | None = None, base_margin: np.ndarray | None = None
) -> xgb.DMatrix:
    """`base_margin` (n, 3): per-class log-odds the trees add to instead of a constant start."""
    label = None if y is None else np.asarray(y, dtype=np.int64)
    return xgb.DMatrix(
        X.astype(np.float64),
        label=label,
        missing=np.nan,
        feature_names=[str(c) for c in X.columns],
        base_margin=base_margin,
    )


def rps_eval(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
    """XGBoost custom metric: the ranked probability score of the current round's probabilities."""
    labels = dmatrix.get_label().astype(np.int64)
    probs = np.asarray(predt, dtype=np.float64).reshape(len(labels), -1)
    return "rps", rps_average(probs, labels)


def train_booster(
    X_train: pd.DataFrame,
    y_train: np.ndarray | pd.Series,
    X_val: pd.DataFrame,
    y_val: np.ndarray | pd.Series,
    params: ModelParams,
    nthread: int = 2,
    callbacks: list[xgb.callback.TrainingCallback] | None = None,
    margins: tuple[np.ndarray, np.ndarray] | None = None,
) -> xgb.Booster:
    """Fit on train, early-stop on `params.early_stopping_metric` of the validation set.

    Validation mlogloss and RPS are both logged every round (the set is named "val");
    `callbacks` go straight to xgboost.train, e.g. a Ray Tune reporter for per-round metrics.
    `margins` (train, validation): base margins, so the trees learn corrections to a forecast.
    """
    if list(X_train.columns) != list(X_val.columns):
        raise ValueError("train and validation features must have the same columns in order")
    stop = xgb.callback.EarlyStopping(
        rounds=params.early_stopping_rounds,
        data_name="val",
        metric_name=params.early_stopping_metric,
        maximize=False,
    )
    return xgb.train(
        booster_params(params, nthread),
        _dmatrix(X_train, y_train, None if margins is None else margins[0]),
        num_boost_round=params.n_estimators,
        evals=[(_dmatrix(X_val, y_val, None if margins is None else margins[1]), "val")],
        callbacks=[*(callbacks or []), stop],
        custom_metric=rps_eval,
        verbose_eval=False,
    )


def _best_iteration(booster: xgb.Booster) -> int | None:
    # best_iteration is only present once early stopping has run (also survives save/load)
    try:
        return int(booster.best_iteration)
    except (AttributeError, ValueError, TypeError):
        return None


def predict_proba(
    booster: xgb.Booster, X: pd.DataFrame, base_margin: np.ndarray | None = None
) -> np.ndarray:
    """(n, 3) probabilities from the trees up to and including the best iteration.

    `inplace_predict` on the float64 values skips building a DMatrix, which is most of the
    cost for the handful of rows Serve predicts at a time; the trees and results are the same.
    """
    if booster.feature_names and list(X.columns) != booster.feature_names:
        raise ValueError(f"features {list(X.columns)} are not the model's {booster.feature_names}")
    best = _best_iteration(booster)
    iteration_range = (0, best + 1) if best is not None else (0, 0)
    probs = booster.inplace_predict(
        X.to_numpy(dtype=np.float64),
        iteration_range=iteration_range,
        missing=np.nan,
        base_margin=base_margin,
    )
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(OUTCOMES))
    return probs / probs.sum(axis=1, keepdims=True)  # float32 rounding; rows sum to 1 exactly


def feature_importance(booster: xgb.Booster, importance_type: str = "total_gain") -> pd.Series:
    """Gain per feature, normalised to sum 1, largest first; unused features get 0.

    Total gain (not xgboost's per-split average "gain") by default, so a feature used in many
    splits is not ranked below one used once with a lucky large split.
    """
    gain = booster.get_score(importance_type=importance_type)
    names = booster.feature_names or sorted(gain)
    # one figure per feature for trees; xgboost's list[float] is for gblinear's per-class weights
    figures = {n: float(cast(float, gain.get(n, 0.0))) for n in names}
    s = pd.Series(figures, dtype=np.float64, name="gain")
    total = s.sum()
    if total > 0:
        s = s / total
    return s.sort_values(ascending=False, kind="stable")


def save_booster(booster: xgb.Booster, path: str | Path) -> Path:
    """Write atomically (temp file in the same folder, then os.replace) so readers never see a
    half-written model. The format follows the suffix: .ubj (binary JSON) or .json."""
    path = Path(path)
    if path.suffix not in _SAVE_SUFFIXES:
        raise ValueError(f"model path must end with one of {_SAVE_SUFFIXES}, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        booster.save_model(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_booster(path: str | Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster
