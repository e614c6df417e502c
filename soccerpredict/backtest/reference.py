"""What production's monitoring keeps of a champion, computed for a backtest fold's model: its
drift reference (the training snapshot the register stage logs, with the model's forecasts on
it) and its validation RPS. The monitoring replay (`ray_jobs.monitor_replay`) reads both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soccerpredict.metrics.scoring import outcome_index, rps_average
from soccerpredict.models.predictor import Predictor
from soccerpredict.registry import reference_snapshot

SIDES = ("home", "draw", "away")


def reference_forecasts(
    predictor: Predictor, train: pd.DataFrame, season: str, last_seasons: int = 0
) -> pd.DataFrame:
    """The champion's training snapshot (match ids; from its latest `last_seasons` training
    seasons, as the register stage draws it) with its forecasts on it, for `season`."""
    snapshot = reference_snapshot(train, predictor.columns, last_seasons)
    probs = predictor.predict_proba(snapshot)
    out = pd.DataFrame({"fold_season": season, "match_id": snapshot["match_id"].to_numpy()})
    for k, side in enumerate(SIDES):
        out[f"model_{side}"] = probs[:, k]
    return out


def validation_rps(predictor: Predictor, validation: pd.DataFrame) -> float:
    """The model's RPS on its validation seasons: the figure it was promoted on."""
    probs = predictor.predict_proba(validation)
    ok = np.isfinite(probs).all(axis=1)
    return rps_average(probs[ok], outcome_index(validation["result"][ok]))
