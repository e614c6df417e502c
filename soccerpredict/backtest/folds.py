"""Folds of the walk-forward backtest and the forecasts of one fold (pure: no Ray, no I/O).

For each season: train on every earlier season but the last `validation_seasons`, validate on
those (early stopping, calibration, the market baseline's choice), predict the season. The
feature table is built once with fixed parameters; features are point-in-time, so a fold's
training rows never see its season's results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from soccerpredict.backtest.plan import Fold, extra_fold_tables
from soccerpredict.backtest.reference import reference_forecasts, validation_rps
from soccerpredict.config import ForecasterParams
from soccerpredict.evaluation import CLOSING_COLUMNS, elo_only, one_price_set
from soccerpredict.metrics.implied import devig
from soccerpredict.models.forecasters import fit_predictor
from soccerpredict.models.predictor import (
    RATINGS_ONLY,
    RATINGS_ONLY_ALL,
    WITH_MARKET,
    WITH_MARKET_1X2,
    Predictor,
)
from soccerpredict.seasons import season_span

# the 1X2 tier is scored on what a request with one price set carries; so is the market tier fed
# that one set (its consensus falls back to the set's de-vigged probabilities): the candidate
# for answering such a request instead of the 1X2 tier
WITH_MARKET_ONE_SET = "with_market_one_set"
FORECASTERS = ("model", WITH_MARKET, WITH_MARKET_1X2, WITH_MARKET_ONE_SET, RATINGS_ONLY)
BASELINES = ("market_baseline", "pinnacle_closing", "elo_only")
_SIDES = ("home", "draw", "away")


def fold_forecasts(
    table: pd.DataFrame,
    fold: Fold,
    params: ForecasterParams,
    nthread: int,
    extra: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per played match of the fold's season: every forecaster's and baseline's
    probabilities, the result, the matchday and the Pinnacle prices that CLV needs; the model's
    validation RPS, and (attrs) its forecasts on its training snapshot for the monitoring replay."""
    played = table[table["result"].notna()]
    train = played[played["season"].isin(fold.train_seasons)]
    validation = played[played["season"].isin(fold.validation_seasons)]
    test = played[played["season"] == fold.season].reset_index(drop=True)
    predictor, summary = fit_predictor(
        train, validation, params, nthread=nthread, extra=extra_fold_tables(extra, fold)
    )
    market = predictor.forecasters[WITH_MARKET]
    baseline = predictor.market_baseline
    assert baseline is not None
    one_set = one_price_set(test)
    probs = {
        "model": predictor.predict_proba(test),
        WITH_MARKET: market.predict_proba(test),
        WITH_MARKET_1X2: predictor.forecasters[WITH_MARKET_1X2].predict_proba(one_set),
        WITH_MARKET_ONE_SET: market.predict_proba(one_set),
        RATINGS_ONLY: predictor.forecasters[RATINGS_ONLY].predict_proba(test),
        "market_baseline": baseline.predict_proba(test),
        "pinnacle_closing": devig(test[CLOSING_COLUMNS].to_numpy(dtype=float)),
        "elo_only": elo_only(pd.concat([train, validation]), test),
    }
    out = test[["match_id", "league", "season", "kickoff_utc", "result"]].copy()
    out["matchday"] = out["league"] + "/" + out["kickoff_utc"].dt.strftime("%Y-%m-%d")
    out["market_baseline_choice"] = baseline.name
    for name, p in probs.items():
        for k, side in enumerate(_SIDES):
            out[f"{name}_{side}"] = p[:, k]
    for col in ["ps_home", "ps_draw", "ps_away", *CLOSING_COLUMNS]:
        out[col] = test[col].to_numpy(dtype=float) if col in test else np.nan
    out["model_validation_rps"] = validation_rps(predictor, validation)
    out.attrs["summary"] = summary
    out.attrs["reference_forecasts"] = reference_forecasts(
        predictor, train, fold.season, fold.reference_last_seasons
    )
    if extra is not None and len(extra):  # apart: the top-5 figures stay what they were
        out.attrs["extra_forecasts"] = extra_fold_forecasts(predictor, extra, fold)
    return out


# the extra leagues (`data.extra_leagues`): the fold's `ratings_only` (trained on the top-5 rows
# before the fold) and `ratings_only_all_leagues` (on the extra leagues' earlier rows too: what
# answers them) beside Elo alone fitted on the league's own earlier rows, and the league's
# prices (closing or of uncertain timing: the benchmark, never a feature)
EXTRA_FORECASTERS = (RATINGS_ONLY, RATINGS_ONLY_ALL, "elo_only", "price_benchmark")


def extra_fold_forecasts(predictor: Predictor, extra: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The extra leagues' played matches in the fold's season's date range (calendar-year
    seasons fall where their dates do), each league's Elo logit fitted on its rows before it."""
    start, end = season_span(fold.season)
    played = extra[extra["result"].notna()]
    day = played["kickoff_utc"].dt.date
    parts = []
    for _, rows in played[(day >= start) & (day <= end)].groupby("league", sort=True):
        before = played[(played["league"] == rows["league"].iloc[0]) & (day < start)]
        if before.empty:
            continue
        rows = rows.reset_index(drop=True)
        probs = {
            RATINGS_ONLY: predictor.forecasters[RATINGS_ONLY].predict_proba(rows),
            RATINGS_ONLY_ALL: predictor.predict_proba(rows),
            "elo_only": elo_only(before, rows),
            "price_benchmark": devig(rows[CLOSING_COLUMNS].to_numpy(dtype=float)),
        }
        out = rows[["match_id", "league", "kickoff_utc", "result"]].copy()
        out["season"] = fold.season
        out["matchday"] = out["league"] + "/" + out["kickoff_utc"].dt.strftime("%Y-%m-%d")
        for name, p in probs.items():
            for k, side in enumerate(_SIDES):
                out[f"{name}_{side}"] = p[:, k]
        parts.append(out)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def probabilities(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[[f"{name}_{side}" for side in _SIDES]].to_numpy(dtype=float)
