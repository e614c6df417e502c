"""Walk-forward backtest on Ray (`python -m ray_jobs.backtest`): one Ray task per fold (season),
XGBoost's nthread sized to the task's CPUs; writes `reports/backtest.json` and a plot, and keeps
the pooled per-match forecasts and each fold model's forecasts on its training snapshot (the
monitoring replay's input, so it never retrains)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict.backtest.clv import clv_report
from soccerpredict.backtest.folds import Fold, fold_forecasts, make_folds
from soccerpredict.backtest.summary import (
    ONE_SET_PAIRS,
    by_group,
    comparable,
    paired_differences,
    pooled_ece,
)
from soccerpredict.config import BacktestParams, Config, ForecasterParams
from soccerpredict.io import write_json, write_parquet
from soccerpredict.plots import plot_backtest

log = logging.getLogger(__name__)


def folds_on_ray(
    table: pd.DataFrame, folds: list[Fold], params: ForecasterParams, cpus: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pooled forecasts of every fold's season, every fold model's forecasts on its snapshot)"""
    import ray

    task = ray.remote(num_cpus=cpus)(fold_forecasts)
    table_ref = ray.put(table)
    refs = [task.remote(table_ref, fold, params, cpus) for fold in folds]
    parts, references = [], []
    for fold, ref in zip(folds, refs, strict=True):
        part = ray.get(ref)
        references.append(part.attrs.pop("reference_forecasts"))
        log.info(
            "fold %s: %d matches, market baseline %s",
            fold.season,
            len(part),
            part["market_baseline_choice"].iloc[0] if len(part) else "-",
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True), pd.concat(references, ignore_index=True)


def summarise(pooled: pd.DataFrame, params: BacktestParams) -> dict[str, Any]:
    """Per season and league, then paired differences and CLV for the selection folds, the
    later (test) folds and all folds."""
    frame = comparable(pooled)
    selection = frame["season"] <= params.selection_last_season
    periods = {"selection": frame[selection], "after_selection": frame[~selection], "all": frame}
    return {
        "folds": sorted(frame["season"].unique().tolist()),
        "n_matches": len(frame),
        "market_baseline_choice": pooled.groupby("season")["market_baseline_choice"]
        .first()
        .to_dict(),
        "by_season": by_group(frame, ["season"]),
        "by_season_league": by_group(frame, ["season", "league"]),
        "overall": {
            name: {
                "n": len(part),
                "ece_pooled": pooled_ece(part),
                "differences": paired_differences(part, params.bootstrap, params.seed),
                # the tier for one 1X2 price set, chosen on the selection folds
                "one_set": paired_differences(part, params.bootstrap, params.seed, ONE_SET_PAIRS),
            }
            for name, part in periods.items()
            if len(part)
        },
        "clv": clv_report(
            frame,
            ("with_market", "model", "market_baseline"),
            params.edge,
            params.bootstrap,
            params.seed,
        ),
    }


def run(cfg: Config) -> dict[str, Any]:
    params = cfg.params.backtest
    table = pd.read_parquet(cfg.runtime.paths.features)
    folds = make_folds(table["season"].dropna().unique().tolist(), params)
    if not folds:
        raise SystemExit(
            f"no backtest fold between {params.first_season} and "
            f"{params.last_season} has earlier seasons to train on"
        )
    with ray_session(cfg):
        pooled, references = folds_on_ray(
            table, folds, cfg.params.forecasters, cfg.runtime.ray.backtest_cpus_per_fold
        )
    report = summarise(pooled, params)
    pooled.attrs.clear()
    write_parquet(pooled, cfg.runtime.paths.backtest_forecasts)
    write_parquet(references, cfg.runtime.paths.backtest_references)
    reports = Path(cfg.runtime.paths.reports)
    write_json(report, reports / "backtest.json")
    plot_backtest(report["by_season"], reports / "plots" / "backtest.png")
    for name, period in report["overall"].items():
        for pair, diff in period["differences"].items():
            log.info(
                "%s %s rps %+.5f [%+.5f, %+.5f]",
                name,
                pair,
                diff["rps"]["mean"],
                diff["rps"]["low"],
                diff["rps"]["high"],
            )
    return report


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
