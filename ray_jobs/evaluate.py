"""Evaluate the trained model on the test seasons next to the bookmakers and baselines
(`python -m ray_jobs.evaluate`). Writes `reports/metrics.json` and the plots."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config
from soccerpredict.evaluation import (
    error_analysis,
    evaluate,
    evaluate_extra_leagues,
    favourite_band,
)
from soccerpredict.features.market import MARKET_COLUMNS
from soccerpredict.io import write_json
from soccerpredict.metrics.scoring import outcome_index
from soccerpredict.models.predictor import RATINGS_ONLY_ALL, Predictor
from soccerpredict.plots import plot_calibration, plot_grouped_rps

log = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, object]:
    paths = cfg.runtime.paths
    reports = Path(paths.reports)
    train, test = (
        pd.read_parquet(paths.split_file("train")),
        pd.read_parquet(paths.split_file("test")),
    )
    predictor = Predictor.load(cfg.runtime.paths.model_dir)
    metrics, named, mask = evaluate(predictor, train, test)
    extra_files = [Path(paths.split_file(n)) for n in ("extra_train", "extra_test")]
    if all(f.exists() for f in extra_files):
        extra_train, extra_test = (pd.read_parquet(f) for f in extra_files)
        if len(extra_test):
            # per extra league: the tier that answers it and the top-5 ratings_only beside Elo,
            # base rates, uniform and its prices
            metrics["extra_leagues"] = evaluate_extra_leagues(predictor, extra_train, extra_test)[0]
    common = test[mask].reset_index(drop=True)
    by_league = error_analysis(named, common, common["league"])
    by_band = error_analysis(named, common, favourite_band(common[MARKET_COLUMNS].to_numpy()))
    write_json(metrics, paths.metrics)
    write_json(
        {
            "by_league": by_league.to_dict(orient="records"),
            "by_favourite_band": by_band.to_dict(orient="records"),
        },
        reports / "error_analysis.json",
    )
    y = outcome_index(common["result"])
    plot_calibration(
        {k: (named[k], y) for k in ("with_market", "ratings_only", "pinnacle_closing")},
        reports / "plots" / "calibration.png",
    )
    plot_grouped_rps(by_league, "group", reports / "plots" / "rps_by_league.png")
    plot_grouped_rps(by_band, "group", reports / "plots" / "rps_by_favourite.png")
    _log_table(metrics)
    return metrics


def _log_table(metrics: dict[str, object]) -> None:
    test = metrics["test"]
    assert isinstance(test, dict)
    for name, scores in test.items():
        log.info(
            "%-20s rps %.4f  log-loss %.4f  ece %.4f",
            name,
            scores["rps"],
            scores["log_loss"],
            scores["ece"],
        )
    log.info("matches compared: %s of %s", metrics["n_common"], metrics["n_test"])
    extra = metrics.get("extra_leagues")
    if isinstance(extra, dict):
        for league, entry in extra["leagues"].items():
            scores = entry["test"]
            log.info(
                "%s (%d): %s %.4f  ratings_only %.4f  elo_only %.4f  price benchmark %.4f",
                league,
                entry["n_common"],
                RATINGS_ONLY_ALL,
                scores[RATINGS_ONLY_ALL]["rps"],
                scores["ratings_only"]["rps"],
                scores["elo_only"]["rps"],
                scores["price_benchmark"]["rps"],
            )


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
