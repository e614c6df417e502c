"""Gradient-boosted H/D/A classifier and probability calibration."""

from soccerpredict.models.calibration import Calibrator, choose_calibration, fit_calibrator
from soccerpredict.models.xgb import (
    feature_importance,
    load_booster,
    predict_proba,
    save_booster,
    train_booster,
)

__all__ = [
    "Calibrator",
    "choose_calibration",
    "feature_importance",
    "fit_calibrator",
    "load_booster",
    "predict_proba",
    "save_booster",
    "train_booster",
]
