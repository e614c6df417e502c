"""Walk-forward backtest on Ray (`python -m ray_jobs.backtest`): one Ray task per fold (season),
XGBoost's nthread sized to the task's CPUs; writes `reports/backtest.json` and a plot, and keeps
the pooled per-match forecasts and each fold model's forecasts on its training snapshot (the
monitoring replay's input, so it never retrains)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict.backtest.clv import clv_report
from soccerpredict.backtest.folds import EXTRA_FORECASTERS, fold_forecasts, probabilities
from soccerpredict.backtest.plan import Fold, make_folds
from soccerpredict.backtest.summary import (
    ONE_SET_PAIRS,
    by_group,
    comparable,
    paired_differences,
    pooled_ece,
)
from soccerpredict.config import BacktestParams, Config, ForecasterParams
from soccerpredict.io import write_json, write_parquet
from soccerpredict.metrics.scoring import outcome_index, score_all
from soccerpredict.models.predictor import RATINGS_ONLY, RATINGS_ONLY_ALL
from soccerpredict.plots import plot_backtest

log = logging.getLogger(__name__)


def folds_on_ray(
    table: pd.DataFrame,
    folds: list[Fold],
    params: ForecasterParams,
    cpus: int,
    extra: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(pooled forecasts of every fold's season, every fold model's forecasts on its snapshot,
    the extra leagues' forecasts of every fold)"""
    import ray

    task = ray.remote(num_cpus=cpus)(fold_forecasts)
    table_ref = ray.put(table)
    extra_ref = ray.put(extra)
    # Ray's stubs type remote functions of up to four arguments
    refs = [
        task.remote(table_ref, fold, params, cpus, extra_ref)  # type: ignore[call-arg]
        for fold in folds
    ]
    parts, references, extras = [], [], []
    for fold, ref in zip(folds, refs, strict=True):
        part = ray.get(ref)
        references.append(part.attrs.pop("reference_forecasts"))
        extras.append(part.attrs.pop("extra_forecasts", pd.DataFrame()))
        log.info(
            "fold %s: %d matches, market baseline %s",
            fold.season,
            len(part),
            part["market_baseline_choice"].iloc[0] if len(part) else "-",
        )
        parts.append(part)
    return (
        pd.concat(parts, ignore_index=True),
        pd.concat(references, ignore_index=True),
        pd.concat(extras, ignore_index=True),
    )


def summarise_extra(frame: pd.DataFrame, params: BacktestParams) -> dict[str, Any]:
    """The extra leagues, per league and pooled: `ratings_only` (top-5-trained) and
    `ratings_only_all_leagues` (what answers them) − Elo alone and − the league's prices, and
    the one − the other, 95% intervals resampling matchdays; per fold (season) scores."""
    if frame.empty:
        return {}
    finite = [np.isfinite(probabilities(frame, n)).all(axis=1) for n in EXTRA_FORECASTERS]
    ok = np.asarray(np.logical_and.reduce(finite), dtype=bool)
    frame = frame[ok].reset_index(drop=True)
    pairs = (
        (RATINGS_ONLY, "elo_only"),
        (RATINGS_ONLY, "price_benchmark"),
        (RATINGS_ONLY_ALL, "elo_only"),
        (RATINGS_ONLY_ALL, RATINGS_ONLY),
        (RATINGS_ONLY_ALL, "price_benchmark"),
    )

    def scores(part: pd.DataFrame) -> dict[str, Any]:
        y = outcome_index(part["result"])
        out: dict[str, Any] = {"n": len(part)}
        for name in EXTRA_FORECASTERS:
            out[name] = score_all(probabilities(part, name), y)
        return out

    groups = {"all": frame} | {str(k): g for k, g in frame.groupby("league", sort=True)}
    return {
        "folds": sorted(frame["season"].unique().tolist()),
        "n_matches": len(frame),
        "by_league": {
            name: scores(part)
            | {"differences": paired_differences(part, params.bootstrap, params.seed, pairs)}
            for name, part in groups.items()
        },
        "by_season_league": [
            {"season": s, "league": lg} | scores(part)
            for (s, lg), part in frame.groupby(["season", "league"], sort=True)
        ],
    }


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
    extra_path = cfg.runtime.paths.features_extra
    extra = pd.read_parquet(extra_path) if extra_path.exists() else None
    folds = make_folds(
        table["season"].dropna().unique().tolist(),
        params,
        cfg.params.drift.reference_last_seasons,
    )
    if not folds:
        raise SystemExit(
            f"no backtest fold between {params.first_season} and "
            f"{params.last_season} has earlier seasons to train on"
        )
    with ray_session(cfg):
        pooled, references, extra_pooled = folds_on_ray(
            table, folds, cfg.params.forecasters, cfg.runtime.ray.backtest_cpus_per_fold, extra
        )
    report = summarise(pooled, params)
    # the extra leagues: the folds' ratings_only (trained on the top 5) on their matches
    report["extra_leagues"] = summarise_extra(extra_pooled, params)
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
