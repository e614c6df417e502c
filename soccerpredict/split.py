"""Temporal split by season name; matches without a result are upcoming, never trained on."""

from __future__ import annotations

import pandas as pd

from soccerpredict.config import SplitParams

SPLITS = ("train", "validation", "test", "upcoming")


def temporal_split(features: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    played = features["result"].notna()
    season = features["season"]
    first_held_out = min(params.validation_seasons + params.test_seasons)
    masks = {
        "train": played & (season < first_held_out),
        "validation": played & season.isin(params.validation_seasons),
        "test": played & season.isin(params.test_seasons),
        "upcoming": ~played,
    }
    if max(params.validation_seasons) >= min(params.test_seasons):
        raise ValueError("validation seasons must all come before the test seasons")
    return {name: features[mask].reset_index(drop=True) for name, mask in masks.items()}
