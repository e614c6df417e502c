"""Scores of the pooled fold forecasts: per season and league, paired bootstrap differences that
resample matchdays, and closing-line value of a fixed betting rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.backtest.folds import BASELINES, FORECASTERS, probabilities
from soccerpredict.metrics.scoring import ece, log_loss, outcome_index, rps, rps_average

ALL = FORECASTERS + BASELINES
# (forecaster, the baseline it must beat)
PAIRS = (
    ("with_market", "market_baseline"),
    ("with_market_1x2", "market_baseline"),
    ("model", "market_baseline"),
    ("ratings_only", "elo_only"),
    ("with_market", "pinnacle_closing"),
)
# which tier answers a request with one 1X2 price set: the tier built for it against the market
# tier fed that set. A design choice, made on the selection folds; not a promotion figure
ONE_SET_PAIRS = (("with_market_1x2", "with_market_one_set"),)
_EPS = 1e-15


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Matches every forecaster and baseline has probabilities for."""
    finite = [np.isfinite(probabilities(frame, n)).all(axis=1) for n in ALL]
    ok = np.asarray(np.logical_and.reduce(finite), dtype=bool)
    return frame[ok].reset_index(drop=True)


def _scores(frame: pd.DataFrame) -> dict[str, Any]:
    y = outcome_index(frame["result"])
    out: dict[str, Any] = {"n": len(frame)}
    for name in ALL:
        p = probabilities(frame, name)
        out[name] = {"rps": rps_average(p, y), "log_loss": log_loss(p, y), "ece": ece(p, y)}
    return out


def by_group(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    return [
        dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)) | _scores(group)
        for key, group in frame.groupby(keys, sort=True)
    ]


def losses(frame: pd.DataFrame, name: str) -> dict[str, np.ndarray]:
    y = outcome_index(frame["result"])
    p = probabilities(frame, name)
    picked = np.clip(p[np.arange(len(y)), y], _EPS, 1.0)
    return {"rps": rps(p, y), "log_loss": -np.log(picked)}


def cluster_bootstrap(
    values: np.ndarray, clusters: pd.Series, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """Mean of `values` and its 95% interval, resampling whole clusters (matchdays)."""
    codes, _ = pd.factorize(clusters)
    sums = np.bincount(codes, weights=values)
    counts = np.bincount(codes).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=n_boot)
    means = (weights @ sums) / (weights @ counts)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def paired_differences(
    frame: pd.DataFrame,
    n_boot: int,
    seed: int,
    pairs: tuple[tuple[str, str], ...] = PAIRS,
) -> dict[str, Any]:
    """Mean loss difference forecaster - baseline (negative: the forecaster is better)."""
    out: dict[str, Any] = {}
    for model, base in pairs:
        a, b = losses(frame, model), losses(frame, base)
        out[f"{model}-{base}"] = {
            metric: dict(
                zip(
                    ("mean", "low", "high"),
                    cluster_bootstrap(a[metric] - b[metric], frame["matchday"], n_boot, seed),
                    strict=True,
                )
            )
            for metric in ("rps", "log_loss")
        }
    return out


def pooled_ece(frame: pd.DataFrame) -> dict[str, float]:
    y = outcome_index(frame["result"])
    return {name: ece(probabilities(frame, name), y) for name in ALL}
