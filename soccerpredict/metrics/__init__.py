"""Scoring rules for H/D/A probability forecasts and bookmaker-odds de-vigging."""

from soccerpredict.metrics.implied import devig, overround
from soccerpredict.metrics.scoring import (
    accuracy,
    brier,
    calibration_table,
    ece,
    log_loss,
    outcome_index,
    rps,
    rps_average,
    score_all,
)

__all__ = [
    "accuracy",
    "brier",
    "calibration_table",
    "devig",
    "ece",
    "log_loss",
    "outcome_index",
    "overround",
    "rps",
    "rps_average",
    "score_all",
]
