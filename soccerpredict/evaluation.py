"""Score the model beside the bookmakers and simple baselines on exactly the same test matches."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from soccerpredict.data.contract import OUTCOMES
from soccerpredict.features.build import PRICE_COLUMNS
from soccerpredict.features.market import EXTRA_MARKET_FEATURES, MARKET_COLUMNS, MARKET_FEATURES
from soccerpredict.metrics.implied import devig
from soccerpredict.metrics.scoring import outcome_index, rps, score_all
from soccerpredict.models.predictor import (
    RATINGS_ONLY,
    RATINGS_ONLY_ALL,
    WITH_MARKET,
    WITH_MARKET_1X2,
    Forecaster,
    Predictor,
)

CLOSING_COLUMNS = ["psc_home", "psc_draw", "psc_away"]
# every pre-closing price input of the feature table
PRE_MATCH_PRICE_FEATURES = MARKET_FEATURES + EXTRA_MARKET_FEATURES + PRICE_COLUMNS


def base_rates(train: pd.DataFrame) -> np.ndarray:
    y = outcome_index(train["result"])
    return np.bincount(y, minlength=len(OUTCOMES)) / len(y)


def elo_only(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Multinomial logit on the Elo gap alone: what ratings know without the market."""
    model = LogisticRegression(max_iter=1000)
    model.fit(train[["elo_diff"]].to_numpy(), outcome_index(train["result"]))
    return model.predict_proba(test[["elo_diff"]].to_numpy())


# the model (each row answered by the tier its inputs allow), each tier on its own, baselines
FORECASTERS = (
    "model",
    "with_market",
    "with_market_1x2",
    "ratings_only",
    "market_baseline",
    "pinnacle_closing",
    "pre_closing_market",
    "elo_only",
    "base_rates",
    "uniform",
)


def one_price_set(test: pd.DataFrame) -> pd.DataFrame:
    """What a request with only a 1X2 price set carries: every other market input missing."""
    stripped = test.copy()
    stripped[PRICE_COLUMNS + EXTRA_MARKET_FEATURES] = np.nan
    return stripped


def one_set_tier(predictor: Predictor, market: Forecaster) -> Forecaster:
    """The tier a request with one 1X2 price set gets (a model from before it existed: the
    market tier fed that set)."""
    return predictor.forecasters.get(WITH_MARKET_1X2, market)


def forecasts(
    predictor: Predictor, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, np.ndarray]:
    market = predictor.forecasters[WITH_MARKET]
    baseline = predictor.market_baseline or market.baseline
    assert baseline is not None
    return {
        "model": predictor.predict_proba(test),
        "with_market": market.predict_proba(test),
        "with_market_1x2": one_set_tier(predictor, market).predict_proba(one_price_set(test)),
        "ratings_only": predictor.forecasters[RATINGS_ONLY].predict_proba(test),
        "market_baseline": baseline.predict_proba(test),
        "pinnacle_closing": devig(test[CLOSING_COLUMNS].to_numpy(dtype=float)),
        "pre_closing_market": test[MARKET_COLUMNS].to_numpy(dtype=float),
        "elo_only": elo_only(train, test),
        "base_rates": np.tile(base_rates(train), (len(test), 1)),
        "uniform": np.full((len(test), 3), 1.0 / 3.0),
    }


def common_mask(named: dict[str, np.ndarray]) -> np.ndarray:
    """Matches every forecaster has an opinion on; all figures are compared on these."""
    return np.logical_and.reduce([np.isfinite(p).all(axis=1) for p in named.values()])


def evaluate(
    predictor: Predictor, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, object], dict[str, np.ndarray], np.ndarray]:
    test = test.reset_index(drop=True)
    named = forecasts(predictor, train, test)
    mask = common_mask(named)
    y = outcome_index(test["result"])
    no_prices = test.copy()
    no_prices[PRE_MATCH_PRICE_FEATURES] = np.nan
    baseline = predictor.market_baseline or predictor.forecasters[WITH_MARKET].baseline
    metrics: dict[str, object] = {
        "n_test": len(test),
        "n_common": int(mask.sum()),
        "market_baseline": None if baseline is None else baseline.to_dict(),
        "test": {name: score_all(p[mask], y[mask]) for name, p in named.items()},
        "model_all_test_matches": score_all(named["model"], y),
        # the whole model fed no price at all: what a client without odds gets
        "model_without_prices": score_all(predictor.predict_proba(no_prices)[mask], y[mask]),
    }
    return metrics, {k: v[mask] for k, v in named.items()}, mask


def favourite_band(market: np.ndarray) -> pd.Series:
    """Bands by the market's favourite probability; who was favoured decides the band, not the result."""
    top = np.nanmax(market, axis=1)
    bands = pd.cut(
        top,
        [0, 0.45, 0.6, 1.0],
        labels=["open (<45%)", "favourite 45-60%", "strong favourite >60%"],
    )
    return pd.Series(bands.astype(str))


def error_analysis(named: dict[str, np.ndarray], test: pd.DataFrame, by: pd.Series) -> pd.DataFrame:
    """Mean RPS per group for the model and the closing line."""
    y = outcome_index(test["result"])
    frame = pd.DataFrame({"group": by.to_numpy()})
    names = ("model", "ratings_only", "market_baseline", "pinnacle_closing", "elo_only")
    for name in names:
        frame[name] = rps(named[name], y)
    table = frame.groupby("group").agg(
        n=("model", "size"), **{name: (name, "mean") for name in names}
    )
    return table.reset_index()


# the extra leagues (`data.extra_leagues`): what `ratings_only` is scored beside there. Their
# prices (Pinnacle's, stored as closing: their timing is uncertain) are the benchmark only
EXTRA_FORECASTERS = (
    "ratings_only",
    RATINGS_ONLY_ALL,
    "elo_only",
    "base_rates",
    "uniform",
    "price_benchmark",
)


def extra_league_forecasts(
    predictor: Predictor, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, np.ndarray]:
    """One league's test rows: `ratings_only` (the top-5-trained tier), what answers the league
    (`ratings_only_all_leagues`), and Elo alone and base rates fitted on that league's own
    training rows (the same code as the top-5's baselines)."""
    return {
        "ratings_only": predictor.forecasters[RATINGS_ONLY].predict_proba(test),
        RATINGS_ONLY_ALL: predictor.predict_proba(test),
        "elo_only": elo_only(train, test),
        "base_rates": np.tile(base_rates(train), (len(test), 1)),
        "uniform": np.full((len(test), 3), 1.0 / 3.0),
        "price_benchmark": devig(test[CLOSING_COLUMNS].to_numpy(dtype=float)),
    }


def evaluate_extra_leagues(
    predictor: Predictor, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, object], pd.DataFrame]:
    """Per extra league and pooled: every forecaster on the same matches (those with a price
    benchmark). Returns the scores and the rows scored with each forecaster's probabilities."""
    per_league: dict[str, object] = {}
    scored: list[pd.DataFrame] = []
    skipped: list[str] = []  # no training rows: no Elo logit or base rates of its own
    train, test = train[train["result"].notna()], test[test["result"].notna()]
    for league, rows in test.groupby("league", sort=True):
        rows = rows.reset_index(drop=True)
        league_train = train[train["league"] == league]
        if league_train.empty or rows.empty:
            skipped.append(str(league))
            continue
        named = extra_league_forecasts(predictor, league_train, rows)
        mask = common_mask(named)
        y = outcome_index(rows["result"])
        per_league[str(league)] = {
            "n_test": len(rows),
            "n_common": int(mask.sum()),
            "first_day": str(rows["kickoff_utc"].min().date()),
            "last_day": str(rows["kickoff_utc"].max().date()),
            "test": {name: score_all(p[mask], y[mask]) for name, p in named.items()},
        }
        frame = rows.loc[mask, ["league", "kickoff_utc", "result"]].reset_index(drop=True)
        for name, p in named.items():
            frame[[f"{name}_{o}" for o in OUTCOMES]] = p[mask]
        scored.append(frame)
    pooled: dict[str, object] = {}
    if scored:
        frame = pd.concat(scored, ignore_index=True)
        y = outcome_index(frame["result"])
        pooled = {
            "n_common": len(frame),
            "test": {
                name: score_all(frame[[f"{name}_{o}" for o in OUTCOMES]].to_numpy(), y)
                for name in EXTRA_FORECASTERS
            },
        }
    return {"leagues": per_league, "all": pooled, "skipped": skipped}, (
        pd.concat(scored, ignore_index=True) if scored else pd.DataFrame()
    )
