"""Fit the forecaster tiers: `ratings_only` on ratings alone, `with_market` on a market consensus.

Pure: frames in, a `Predictor` out; the train stage and every backtest fold call the same code,
so everything fitted (boosters, calibrators, the market baseline's choice) is fitted from the
training and validation seasons it is given and nothing else. The market baseline (one book, one
de-vig method, chosen on validation) is what `with_market` is measured against; `with_market`
itself starts from the consensus of several books (`forecasters.market_margin`) and keeps a fixed
share of its trees' correction (`forecasters.with_market_correction`), both chosen on the
backtest's selection folds.
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
from soccerpredict.models.market import (
    MarketConsensus,
    MarketForecast,
    choose_market_baseline,
)
from soccerpredict.models.predictor import RATINGS_ONLY, WITH_MARKET, Forecaster, Predictor
from soccerpredict.models.xgb import train_booster

WITH_MARKET_COLUMNS: list[str] = STATE_FEATURES + MARKET_FEATURES + EXTRA_MARKET_FEATURES


def fit_forecaster(
    name: str,
    columns: list[str],
    baseline: MarketForecast | None,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ModelParams,
    nthread: int = 2,
    correction: float = 1.0,
) -> tuple[Forecaster, dict[str, Any]]:
    """Boost on train, early-stop and choose the calibration on validation."""
    shell = Forecaster(name, None, Calibrator(), columns, baseline, correction)  # type: ignore[arg-type]
    train, validation = train[shell.usable(train)], validation[shell.usable(validation)]
    y_train, y_val = outcome_index(train["result"]), outcome_index(validation["result"])
    margins = None
    if baseline is not None:
        margins = (shell.margin(train), shell.margin(validation))
    shell.booster = train_booster(
        train[columns],
        y_train,
        validation[columns],
        y_val,
        params,
        nthread=nthread,
        margins=margins,  # type: ignore[arg-type]
    )
    raw_val = shell.raw_proba(validation)
    shell.calibrator, cv_scores = choose_calibration(params.calibration_methods, raw_val, y_val)
    return shell, {
        "best_iteration": int(shell.booster.best_iteration),
        "calibration": shell.calibrator.method,
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
    consensus = MarketConsensus(tuple(params.market_margin.books), params.market_margin.method)
    market, market_summary = fit_forecaster(
        WITH_MARKET,
        WITH_MARKET_COLUMNS,
        consensus,
        train,
        validation,
        params.with_market,
        nthread,
        correction=params.with_market_correction,
    )
    ratings, ratings_summary = fit_forecaster(
        RATINGS_ONLY, RATINGS_COLUMNS, None, train, validation, params.ratings_only, nthread
    )
    summary = {
        "market_baseline": baseline.to_dict(),
        "with_market_margin": consensus.to_dict(),
        "market_baseline_validation": baseline_scores,
        WITH_MARKET: market_summary,
        RATINGS_ONLY: ratings_summary,
    }
    predictor = Predictor(
        {WITH_MARKET: market, RATINGS_ONLY: ratings}, feature_contract(), market_baseline=baseline
    )
    return predictor, summary
