"""Closing-line value of one betting rule fixed in advance.

Bet outcome k of a match when p_k * Pinnacle's pre-closing price_k > 1 + edge (at most one bet
per match: the outcome with the largest edge). Each bet's CLV is price_k * q_k - 1, with q
Pinnacle's closing prices de-vigged by CLOSING_DEVIG; its flat-stake profit is price_k - 1 if
the outcome happened, else -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.backtest.folds import probabilities
from soccerpredict.backtest.summary import cluster_bootstrap
from soccerpredict.metrics.implied import DevigMethod, devig
from soccerpredict.metrics.scoring import outcome_index

CLOSING_DEVIG: DevigMethod = "proportional"
_PRE = ["ps_home", "ps_draw", "ps_away"]
_CLOSE = ["psc_home", "psc_draw", "psc_away"]


def bets(frame: pd.DataFrame, name: str, edge: float) -> pd.DataFrame:
    """One row per bet: season, matchday, the price taken, CLV and profit."""
    p = probabilities(frame, name)
    price = frame[_PRE].to_numpy(dtype=float)
    closing = devig(frame[_CLOSE].to_numpy(dtype=float), method=CLOSING_DEVIG)
    with np.errstate(invalid="ignore"):
        value = np.where(
            np.isfinite(price) & np.isfinite(closing).all(axis=1, keepdims=True),
            p * price - 1.0,
            -np.inf,
        )
    pick = value.argmax(axis=1)
    rows = np.arange(len(frame))
    chosen = value[rows, pick] > edge
    won = outcome_index(frame["result"]) == pick
    taken = price[rows, pick]
    return pd.DataFrame(
        {
            "season": frame["season"].to_numpy()[chosen],
            "matchday": frame["matchday"].to_numpy()[chosen],
            "clv": (taken * closing[rows, pick] - 1.0)[chosen],
            "profit": np.where(won, taken - 1.0, -1.0)[chosen],
        }
    )


def _summary(placed: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    if placed.empty:
        return {"bets": 0}
    out: dict[str, Any] = {"bets": len(placed)}
    for column, label in (("clv", "mean_clv"), ("profit", "roi")):
        mean, lo, hi = cluster_bootstrap(
            placed[column].to_numpy(), placed["matchday"], n_boot, seed
        )
        out[label] = {"mean": mean, "low": lo, "high": hi}
    return out


def clv_report(
    frame: pd.DataFrame, names: tuple[str, ...], edge: float, n_boot: int, seed: int
) -> dict[str, Any]:
    """Per forecaster (the market baseline is the no-model control): per season and overall."""
    report: dict[str, Any] = {
        "rule": f"p * Pinnacle pre-closing price > 1 + {edge}",
        "closing_devig": CLOSING_DEVIG,
    }
    for name in names:
        placed = bets(frame, name, edge)
        report[name] = {
            "overall": _summary(placed, n_boot, seed),
            "by_season": {
                s: _summary(g, n_boot, seed) for s, g in placed.groupby("season", sort=True)
            },
        }
    return report
