"""Fit the forecaster tiers: `ratings_only` on ratings alone, `with_market` on the market baseline.

Pure: frames in, a `Predictor` out; the train stage and every backtest fold call the same code,
so everything fitted (boosters, calibrators, the market baseline's choice) is fitted from the
training and validation seasons it is given and nothing else.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from soccerpredict.config import ForecasterParams, ModelParams
from soccerpredict.features.build import (
    MARKET_FEATURES,
    RATINGS_COLUMNS,
    STATE_FEATURES,
    feature_contract,
)
from soccerpredict.features.market import EXTRA_MARKET_FEATURES
from soccerpredict.metrics.scoring import outcome_index, score_all
from soccerpredict.models.calibration import Calibrator, choose_calibration
from soccerpredict.models.market import MarketBaseline, choose_market_baseline
from soccerpredict.models.predictor import (
    RATINGS_ONLY,
    WITH_MARKET,
    Forecaster,
    Predictor,
    market_margin,
    usable_rows,
)
from soccerpredict.models.xgb import train_booster

WITH_MARKET_COLUMNS: list[str] = STATE_FEATURES + MARKET_FEATURES + EXTRA_MARKET_FEATURES


def fit_forecaster(
    name: str,
    columns: list[str],
    baseline: MarketBaseline | None,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ModelParams,
    nthread: int = 2,
) -> tuple[Forecaster, dict[str, Any]]:
    """Boost on train, early-stop and choose the calibration on validation."""
    train = train[usable_rows(baseline, train)]
    validation = validation[usable_rows(baseline, validation)]
    y_train, y_val = outcome_index(train["result"]), outcome_index(validation["result"])
    margins = None
    if baseline is not None:
        margins = (market_margin(baseline, train), market_margin(baseline, validation))
    booster = train_booster(
        train[columns],
        y_train,
        validation[columns],
        y_val,
        params,
        nthread=nthread,
        margins=margins,
    )
    forecaster = Forecaster(name, booster, Calibrator(), columns, baseline)
    raw_val = forecaster.raw_proba(validation)
    forecaster.calibrator, cv_scores = choose_calibration(
        params.calibration_methods, raw_val, y_val
    )
    return forecaster, {
        "best_iteration": int(booster.best_iteration),
        "calibration": forecaster.calibrator.method,
        "calibration_cv_log_loss": cv_scores,
        "validation_uncalibrated": score_all(raw_val, y_val),
        "n_train": len(train),
        "n_validation": len(validation),
    }


def fit_predictor(
    train: pd.DataFrame, validation: pd.DataFrame, params: ForecasterParams, nthread: int = 2
) -> tuple[Predictor, dict[str, Any]]:
    """Both tiers and the market baseline, from these seasons only."""
    train = train[train["result"].notna()]
    validation = validation[validation["result"].notna()]
    baseline, baseline_scores = choose_market_baseline(validation)
    market, market_summary = fit_forecaster(
        WITH_MARKET, WITH_MARKET_COLUMNS, baseline, train, validation, params.with_market, nthread
    )
    ratings, ratings_summary = fit_forecaster(
        RATINGS_ONLY, RATINGS_COLUMNS, None, train, validation, params.ratings_only, nthread
    )
    summary = {
        "market_baseline": baseline.to_dict(),
        "market_baseline_validation": baseline_scores,
        WITH_MARKET: market_summary,
        RATINGS_ONLY: ratings_summary,
    }
    return Predictor({WITH_MARKET: market, RATINGS_ONLY: ratings}, feature_contract()), summary
