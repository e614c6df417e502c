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
    RATINGS_ONLY_ALL,
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
    leagues: tuple[str, ...] | None = None,
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
    shell = Forecaster(
        name, booster, Calibrator(), columns, baseline, requires or [], correction, leagues
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
    train: pd.DataFrame,
    validation: pd.DataFrame,
    params: ForecasterParams,
    nthread: int = 2,
    extra: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[Predictor, dict[str, Any]]:
    """Every tier and the market baseline, from these seasons only. The one-set tier takes the
    market tier's booster parameters: it is the same model over fewer inputs. With `extra` (the
    extra leagues' train and validation rows) and `params.ratings_only_all_leagues`, a second
    `ratings_only` tier is trained on both (early stopping and calibration on both validation
    tables), and `ratings_only` answers only the leagues of its own training rows; the market
    tiers and the baseline never see the extra rows."""
    train = train[train["result"].notna()]
    validation = validation[validation["result"].notna()]
    all_leagues = None
    if extra is not None and params.ratings_only_all_leagues:
        extra_train, extra_validation = (e[e["result"].notna()] for e in extra)
        if len(extra_train) and len(extra_validation):
            all_leagues = (
                pd.concat([train, extra_train], ignore_index=True),
                pd.concat([validation, extra_validation], ignore_index=True),
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
        train,
        validation,
        params.ratings_only,
        nthread,
        leagues=None if all_leagues is None else tuple(sorted(train["league"].unique())),
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
    if all_leagues is not None:
        tiers[RATINGS_ONLY_ALL], summary[RATINGS_ONLY_ALL] = fit_forecaster(
            RATINGS_ONLY_ALL, RATINGS_COLUMNS, None, *all_leagues, params.ratings_only, nthread
        )
    predictor = Predictor(tiers, feature_contract(), market_baseline=baseline)
    return predictor, summary
