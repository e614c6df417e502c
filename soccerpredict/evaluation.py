"""Score the model beside the bookmakers and simple baselines on exactly the same test matches."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from soccerpredict.data.contract import OUTCOMES
from soccerpredict.features.market import MARKET_COLUMNS
from soccerpredict.metrics.implied import devig
from soccerpredict.metrics.scoring import outcome_index, rps, score_all

CLOSING_COLUMNS = ["psc_home", "psc_draw", "psc_away"]


def base_rates(train: pd.DataFrame) -> np.ndarray:
    y = outcome_index(train["result"])
    return np.bincount(y, minlength=len(OUTCOMES)) / len(y)


def elo_only(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Multinomial logit on the Elo gap alone: what ratings know without the market."""
    model = LogisticRegression(max_iter=1000)
    model.fit(train[["elo_diff"]].to_numpy(), outcome_index(train["result"]))
    return model.predict_proba(test[["elo_diff"]].to_numpy())


FORECASTERS = ("model", "pinnacle_closing", "pre_closing_market", "elo_only", "base_rates")


def forecasts(model_probs: np.ndarray, train: pd.DataFrame,
              test: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "model": model_probs,
        "pinnacle_closing": devig(test[CLOSING_COLUMNS].to_numpy(dtype=float)),
        "pre_closing_market": test[MARKET_COLUMNS].to_numpy(dtype=float),
        "elo_only": elo_only(train, test),
        "base_rates": np.tile(base_rates(train), (len(test), 1)),
    }


def common_mask(named: dict[str, np.ndarray]) -> np.ndarray:
    """Matches every forecaster has an opinion on; all figures are compared on these."""
    return np.logical_and.reduce([np.isfinite(p).all(axis=1) for p in named.values()])


def evaluate(model_probs: np.ndarray, train: pd.DataFrame,
             test: pd.DataFrame) -> tuple[dict[str, object], dict[str, np.ndarray], np.ndarray]:
    named = forecasts(model_probs, train, test)
    mask = common_mask(named)
    y = outcome_index(test["result"])
    metrics: dict[str, object] = {
        "n_test": len(test),
        "n_common": int(mask.sum()),
        "test": {name: score_all(p[mask], y[mask]) for name, p in named.items()},
        "model_all_test_matches": score_all(model_probs, y),
    }
    return metrics, {k: v[mask] for k, v in named.items()}, mask


def favourite_band(market: np.ndarray) -> pd.Series:
    """Bands by the market's favourite probability; who was favoured decides the band, not the result."""
    top = np.nanmax(market, axis=1)
    bands = pd.cut(top, [0, 0.45, 0.6, 1.0], labels=["open (<45%)", "favourite 45-60%",
                                                     "strong favourite >60%"])
    return pd.Series(bands.astype(str))


def error_analysis(named: dict[str, np.ndarray], test: pd.DataFrame,
                   by: pd.Series) -> pd.DataFrame:
    """Mean RPS per group for the model and the closing line."""
    y = outcome_index(test["result"])
    frame = pd.DataFrame({"group": by.to_numpy()})
    for name in ("model", "pinnacle_closing", "pre_closing_market"):
        frame[name] = rps(named[name], y)
    table = frame.groupby("group").agg(n=("model", "size"), model=("model", "mean"),
                                       pinnacle_closing=("pinnacle_closing", "mean"),
                                       pre_closing_market=("pre_closing_market", "mean"))
    return table.reset_index()
