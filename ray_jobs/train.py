"""Train the forecaster tiers (`with_market`, `ratings_only`), their calibration and the market
baseline on train + validation (`python -m ray_jobs.train`). `ratings_only` trains with the Ray
Tune search's choice (`reports/tune/best_params.json`: the tuned params if they beat the hand-set
ones on validation, else the hand-set ones). The test split is not read here.

Two predictors come out, both registered by `ray_jobs.register`: the evaluated one
(`paths.model_dir`, the split's: `ray_jobs.evaluate` scores it on the test seasons), and the one
that serves (`paths.production_dir`): with `production.refit`, the same tiers and parameters
refit as the walk-forward backtest's next fold, on every played season but the last
`backtest.validation_seasons` and validated on those, so production forecasts from the latest
seasons (the backtest measures exactly this procedure, season by season)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.backtest.plan import Fold, extra_fold_tables, next_fold
from soccerpredict.config import Config, ForecasterParams
from soccerpredict.io import write_json, write_parquet
from soccerpredict.models.forecasters import fit_predictor
from soccerpredict.models.predictor import WITH_MARKET, Predictor
from soccerpredict.models.xgb import feature_importance
from soccerpredict.plots import plot_feature_importance
from soccerpredict.registry import reference_snapshot
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


def refit(
    played: pd.DataFrame,
    extra: pd.DataFrame | None,
    fold: Fold,
    params: ForecasterParams,
) -> tuple[Predictor, dict[str, Any], pd.DataFrame]:
    """The tiers fitted on the fold's seasons of the `played` rows, as a backtest fold fits
    them; with the top-5 rows they were trained on."""
    rows = played[played["season"].isin(fold.train_seasons)]
    predictor, summary = train(
        rows,
        played[played["season"].isin(fold.validation_seasons)],
        params,
        extra_fold_tables(extra, fold),
    )
    seasons = {"train_seasons": list(fold.train_seasons)}
    summary = seasons | {"validation_seasons": list(fold.validation_seasons)} | summary
    return predictor, summary, rows


def production(
    cfg: Config, params: ForecasterParams
) -> tuple[Predictor, dict[str, Any], pd.DataFrame] | None:
    """The refit predictor that serves (its summary, its training rows), or None when
    `production.refit` is off (the evaluated one serves)."""
    if not cfg.params.production.refit:
        return None
    paths = cfg.runtime.paths
    table = pd.read_parquet(paths.features)
    played = table[table["result"].notna()]
    extra_file = Path(paths.features_extra)
    extra = pd.read_parquet(extra_file) if extra_file.exists() else None
    fold = next_fold(played["season"].tolist(), cfg.params.backtest)
    return refit(played, extra, fold, params)


def run(cfg: Config) -> dict[str, Any]:
    paths = cfg.runtime.paths
    params = tier_params(cfg.params.forecasters, Path(paths.best_params))
    train_rows = pd.read_parquet(paths.split_file("train"))
    validation_rows = pd.read_parquet(paths.split_file("validation"))
    predictor, summary = train(train_rows, validation_rows, params, extra_tables(paths))
    summary["params"] = params.model_dump(mode="json")
    model_dir = Path(paths.model_dir)
    predictor.save(model_dir)
    refitted = production(cfg, params)
    if refitted is None:  # the evaluated predictor serves: the same files
        served, served_rows = predictor, train_rows
        summary["production"] = {
            "refit": False,
            "train_seasons": sorted(train_rows["season"].unique().tolist()),
            "validation_seasons": sorted(validation_rows["season"].unique().tolist()),
        }
    else:
        served, served_summary, served_rows = refitted
        missing = sorted(set(predictor.forecasters) - set(served.forecasters))
        if missing:  # a request the evaluated predictor answers must not lose its tier
            raise ValueError(
                f"the refit predictor has no {missing} tier (its validation seasons "
                f"{served_summary['validation_seasons']} left it no rows); the evaluated one has"
            )
        summary["production"] = {"refit": True} | served_summary
        log.info(
            "served predictor refit on %s..%s, validated on %s",
            served_summary["train_seasons"][0],
            served_summary["train_seasons"][-1],
            ", ".join(served_summary["validation_seasons"]),
        )
    served.save(Path(paths.production_dir))
    # the drift reference register logs with the version: from the served one's training rows
    write_parquet(
        reference_snapshot(served_rows, served.columns, cfg.params.drift.reference_last_seasons),
        paths.served_reference,
    )
    write_json(summary, paths.train_summary)
    # the served market tier's corrections: which inputs the trees use to move away from the
    # market
    importance = feature_importance(served.forecasters[WITH_MARKET].booster)
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
