"""An example request body: the first upcoming fixture, with the pre-closing odds the offline
table used for it (`python -m serve_app.example` prints it as JSON)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import Config, load_config
from soccerpredict.features.market import pre_closing_odds


def example_body(cfg: Config) -> dict[str, Any]:
    predictions = cfg.runtime.paths.predictions
    ids = pd.read_parquet(predictions, columns=["match_id"]) if predictions.exists() else None
    if ids is None or ids.empty:
        return {
            "league": "E0",
            "home_team": "Arsenal",
            "away_team": "Tottenham",
            "kickoff": str(cfg.params.as_of),
        }
    match_id = ids["match_id"].iloc[0]
    matches = pd.read_parquet(cfg.runtime.paths.interim)
    row = matches[matches["match_id"] == match_id]
    fixture = row.iloc[0]
    body: dict[str, Any] = {
        "league": fixture["league"],
        "home_team": fixture["home_team"],
        "away_team": fixture["away_team"],
        "kickoff": str(fixture["kickoff_utc"].date()),
    }
    odds = pre_closing_odds(row)[0]
    if np.isfinite(odds).all():
        body["odds"] = dict(zip(("home", "draw", "away"), map(float, odds), strict=True))
    return body


if __name__ == "__main__":
    print(json.dumps(example_body(load_config())))
