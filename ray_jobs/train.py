"""Train the forecaster tiers (`with_market`, `ratings_only`), their calibration and the market
baseline on train + validation (`python -m ray_jobs.train`). `ratings_only` trains with the Ray
Tune search's choice (`reports/tune/best_params.json`: the tuned params if they beat the hand-set
ones on validation, else the hand-set ones). The test split is not read here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config, ForecasterParams
from soccerpredict.io import write_json
from soccerpredict.models.forecasters import fit_predictor
from soccerpredict.models.predictor import WITH_MARKET, Predictor
from soccerpredict.models.xgb import feature_importance
from soccerpredict.plots import plot_feature_importance
from soccerpredict.tuning import tier_params

log = logging.getLogger(__name__)


def train(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ForecasterParams,
    extra: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[Predictor, dict[str, Any]]:
    """Pure training: both forecaster tiers and the market baseline, chosen on validation."""
    predictor, summary = fit_predictor(train, validation, params, extra=extra)
    return predictor, summary | {"n_train": len(train), "n_validation": len(validation)}


def extra_tables(paths: Any) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The extra leagues' train and validation tables, when the split stage wrote them."""
    files = [Path(paths.split_file(name)) for name in ("extra_train", "extra_validation")]
    if not all(f.exists() for f in files):
        return None
    return pd.read_parquet(files[0]), pd.read_parquet(files[1])


def run(cfg: Config) -> dict[str, Any]:
    paths = cfg.runtime.paths
    params = tier_params(cfg.params.forecasters, Path(paths.best_params))
    predictor, summary = train(
        pd.read_parquet(paths.split_file("train")),
        pd.read_parquet(paths.split_file("validation")),
        params,
        extra_tables(paths),
    )
    summary["params"] = params.model_dump(mode="json")
    model_dir = Path(paths.model_dir)
    predictor.save(model_dir)
    write_json(summary, paths.train_summary)
    # the market tier's corrections: which inputs the trees use to move away from the market
    importance = feature_importance(predictor.forecasters[WITH_MARKET].booster)
    plot_feature_importance(
        importance, Path(cfg.runtime.paths.reports) / "plots" / "feature_importance.png"
    )
    for tier in predictor.forecasters:
        tier_summary = summary[tier]
        log.info(
            "%s: best iteration %s, calibration %s",
            tier,
            tier_summary["best_iteration"],
            tier_summary["calibration"],
        )
    log.info("market baseline chosen on validation: %s", summary["market_baseline"])
    return summary


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
