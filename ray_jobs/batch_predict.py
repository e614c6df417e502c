"""The champion over every upcoming fixture with Ray Data (`python -m ray_jobs.batch_predict`).

Upcoming means after `as_of` (the split's `upcoming` table). The predictions are published as one
Parquet file that Serve's `GET /predict/{match_id}` looks up; it is replaced atomically, so the
app never reads half of it.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict import registry
from soccerpredict.config import Config
from soccerpredict.data.contract import ID_COLUMNS
from soccerpredict.features.market import MARKET_COLUMNS
from soccerpredict.io import write_parquet
from soccerpredict.metrics.implied import fair_odds
from soccerpredict.models.predictor import PROBABILITY_COLUMNS
from soccerpredict.quality import LOG_COLUMNS, log_row

log = logging.getLogger(__name__)
FAIR_COLUMNS = ["fair_odds_home", "fair_odds_draw", "fair_odds_away"]


class ChampionBatch:
    """Ray Data callable class: loads the registered version once per actor, then predicts."""

    def __init__(self, tracking_uri: str, model_name: str, version: str) -> None:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        self.predictor = registry.load_predictor(client, model_name, version)
        self.version = version

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        probs, tiers = self.predictor.predict_with_tiers(batch)
        return predictions_frame(batch, probs, self.version, tiers)


def predictions_frame(
    fixtures: pd.DataFrame, probs: np.ndarray, version: str, tiers: np.ndarray | None = None
) -> pd.DataFrame:
    out = fixtures[ID_COLUMNS + MARKET_COLUMNS].reset_index(drop=True)
    out[PROBABILITY_COLUMNS] = probs
    out[FAIR_COLUMNS] = fair_odds(probs)
    out["model_version"] = version
    out["forecaster"] = np.full(len(out), "", dtype=object) if tiers is None else tiers
    return out


def predict_upcoming(
    upcoming: pd.DataFrame, tracking_uri: str, model_name: str, version: str, batch_size: int = 256
) -> pd.DataFrame:
    import ray.data

    if upcoming.empty:
        return predictions_frame(upcoming, np.empty((0, 3)), version)
    dataset = ray.data.from_pandas(upcoming).map_batches(
        ChampionBatch,
        fn_constructor_kwargs={
            "tracking_uri": tracking_uri,
            "model_name": model_name,
            "version": version,
        },
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=1,
        num_cpus=1,
    )
    return dataset.to_pandas().sort_values(["kickoff_utc", "league", "match_id"], ignore_index=True)


def prediction_log(table: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The batch predictions as prediction-log rows, scored by `ray_jobs.quality` later."""
    rows = [
        log_row(
            r["match_id"],
            r["league"],
            r["kickoff_utc"].date(),
            r["home_team"],
            r["away_team"],
            [r[c] for c in PROBABILITY_COLUMNS],
            r["model_version"],
            "batch",
            as_of,
        )
        for r in table.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


def run(cfg: Config) -> dict[str, Any]:
    name = cfg.runtime.mlflow.model_name
    champion = registry.model_version(registry.tracking_client(cfg), name, registry.CHAMPION)
    upcoming = pd.read_parquet(cfg.runtime.paths.split_file("upcoming"))
    with ray_session(cfg):
        table = predict_upcoming(
            upcoming, cfg.runtime.mlflow.tracking_uri, name, str(champion.version)
        )
    write_parquet(table, cfg.runtime.paths.predictions)
    archive = prediction_log(table, cfg.params.as_of)
    write_parquet(
        archive,
        Path(cfg.runtime.paths.prediction_log)
        / "batch"
        / f"as_of={cfg.params.as_of}_v{champion.version}.parquet",
    )
    log.info("%d upcoming fixtures predicted by %s v%s", len(table), name, champion.version)
    return {"n": len(table), "version": str(champion.version)}


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
