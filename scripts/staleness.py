"""What a stale model costs, on the backtest's selection folds (seasons up to
`backtest.selection_last_season`): each season predicted by its fold's model (trained on every
season before it but the last `backtest.validation_seasons`, validated on those) and by the same
procedure run `k` seasons earlier, both with the backtest's hand-set `forecasters`; the mean
per-match RPS difference stale − fresh, with a 95% interval resampling matchdays.

The evidence behind `production.refit` (docs/forecasting.md, "The served predictor is refit").
Run after the main command (it reads the feature tables and the backtest's pooled forecasts):
`python scripts/staleness.py [--k 1 2 3]`; about a minute per k on 2 cores.
"""

from __future__ import annotations

import argparse

import pandas as pd

from soccerpredict.backtest.folds import fold_forecasts, probabilities
from soccerpredict.backtest.plan import Fold
from soccerpredict.backtest.summary import cluster_bootstrap
from soccerpredict.config import Params, load_config
from soccerpredict.metrics.scoring import outcome_index, rps

TIERS = ("model", "with_market_1x2", "ratings_only")


def stale_forecasts(
    table: pd.DataFrame, extra: pd.DataFrame | None, season: str, k: int, params: Params
) -> pd.DataFrame:
    """`season` predicted by the fold procedure run `k` seasons earlier."""
    seasons = sorted(table["season"].unique())
    i, held = seasons.index(season), params.backtest.validation_seasons
    fold = Fold(season, tuple(seasons[: i - held - k]), tuple(seasons[i - held - k : i - k]))
    return fold_forecasts(table, fold, params.forecasters, 2, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    cfg = load_config()
    paths, backtest = cfg.runtime.paths, cfg.params.backtest
    table = pd.read_parquet(paths.features)
    extra = pd.read_parquet(paths.features_extra) if paths.features_extra.exists() else None
    fresh = pd.read_parquet("data/processed/backtest_forecasts.parquet").set_index("match_id")
    seasons = sorted(s for s in fresh["season"].unique() if s <= backtest.selection_last_season)
    every = sorted(table["season"].unique())
    print(f"seasons {seasons[0]}..{seasons[-1]}; RPS stale − fresh, 95% interval (matchdays)")
    for k in args.k:
        # the stale fold needs a training season before its validation seasons
        usable = [s for s in seasons if every.index(s) > backtest.validation_seasons + k]
        stale = pd.concat(
            [stale_forecasts(table, extra, s, k, cfg.params) for s in usable], ignore_index=True
        )
        same = fresh.loc[stale["match_id"]].reset_index()
        y = outcome_index(stale["result"])
        for tier in TIERS:
            d = rps(probabilities(stale, tier), y) - rps(probabilities(same, tier), y)
            mean, lo, hi = cluster_bootstrap(
                d, stale["matchday"], backtest.bootstrap, backtest.seed
            )
            print(f"k={k} {tier:16s} {mean:+.5f} [{lo:+.5f}, {hi:+.5f}]  n={len(d)}")


if __name__ == "__main__":
    main()
