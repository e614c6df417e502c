"""Fit the forecaster tiers: `ratings_only` on ratings alone, `with_market` on the market baseline,
`with_market_1x2` on one 1X2 price set (what a request with a single set of odds carries).

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
    MARKET_SET,
    MarketBaseline,
    MarketConsensus,
    MarketForecast,
    choose_market_baseline,
)
from soccerpredict.models.predictor import (
    RATINGS_ONLY,
    WITH_MARKET,
    WITH_MARKET_1X2,
    Forecaster,
    Predictor,
    market_margin,
    usable_rows,
)
from soccerpredict.models.xgb import train_booster

WITH_MARKET_COLUMNS: list[str] = STATE_FEATURES + MARKET_FEATURES + EXTRA_MARKET_FEATURES
# one 1X2 price set: its de-vigged probabilities and margin, nothing from other books or markets
ONE_SET_COLUMNS: list[str] = STATE_FEATURES + MARKET_FEATURES


def fit_forecaster(
    name: str,
    columns: list[str],
    baseline: MarketForecast | None,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ModelParams,
    nthread: int = 2,
    requires: list[str] | None = None,
    correction: float = 1.0,
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
    shell = Forecaster(name, booster, Calibrator(), columns, baseline, requires or [], correction)
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
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ForecasterParams,
    nthread: int = 2,
    extra: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[Predictor, dict[str, Any]]:
    """Every tier and the market baseline, from these seasons only. The one-set tier takes the
    market tier's booster parameters: it is the same model over fewer inputs. `extra` (the
    extra leagues' train and validation rows) joins `ratings_only`'s rows when
    `params.ratings_only_extra_leagues`; the market tiers and the baseline never see them."""
    train = train[train["result"].notna()]
    validation = validation[validation["result"].notna()]
    ratings_train, ratings_validation = train, validation
    if extra is not None and params.ratings_only_extra_leagues:
        ratings_train = pd.concat([train, extra[0][extra[0]["result"].notna()]], ignore_index=True)
        ratings_validation = pd.concat(
            [validation, extra[1][extra[1]["result"].notna()]], ignore_index=True
        )
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
        requires=consensus.columns,
        correction=params.with_market_correction,
    )
    one_set, one_set_summary = fit_forecaster(
        WITH_MARKET_1X2,
        ONE_SET_COLUMNS,
        MarketBaseline(MARKET_SET),
        train,
        validation,
        params.with_market,
        nthread,
        requires=MARKET_FEATURES[:3],
    )
    ratings, ratings_summary = fit_forecaster(
        RATINGS_ONLY,
        RATINGS_COLUMNS,
        None,
        ratings_train,
        ratings_validation,
        params.ratings_only,
        nthread,
    )
    summary = {
        "market_baseline": baseline.to_dict(),
        "with_market_margin": consensus.to_dict(),
        "market_baseline_validation": baseline_scores,
        WITH_MARKET: market_summary,
        WITH_MARKET_1X2: one_set_summary,
        RATINGS_ONLY: ratings_summary,
    }
    tiers = {WITH_MARKET: market, WITH_MARKET_1X2: one_set, RATINGS_ONLY: ratings}
    predictor = Predictor(tiers, feature_contract(), market_baseline=baseline)
    return predictor, summary
