"""Market-implied probabilities from pre-closing odds. Closing odds are never a feature."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soccerpredict.metrics.implied import devig

# Most informative first: the market average pools many books; Pinnacle is sharp; Bet365 is always there.
PRE_CLOSING_SOURCES: tuple[str, ...] = ("avg", "ps", "b365")
# the bookmakers' de-vigged pre-closing probabilities, and with them the margin: the features
MARKET_COLUMNS: list[str] = ["market_prob_home", "market_prob_draw", "market_prob_away"]
MARKET_FEATURES: list[str] = [*MARKET_COLUMNS, "market_overround"]


def pre_closing_odds(matches: pd.DataFrame) -> np.ndarray:
    """(n, 3) odds, row by row from the first source that has all three prices."""
    odds = np.full((len(matches), 3), np.nan)
    for source in reversed(PRE_CLOSING_SOURCES):
        cols = [f"{source}_home", f"{source}_draw", f"{source}_away"]
        if not set(cols) <= set(matches.columns):
            continue
        candidate = matches[cols].to_numpy(dtype=float)
        usable = np.isfinite(candidate).all(axis=1) & (candidate > 1.0).all(axis=1)
        odds[usable] = candidate[usable]
    return odds


def market_values(odds: np.ndarray) -> np.ndarray:
    """(n, 4): de-vigged home / draw / away probabilities and the overround of (n, 3) odds."""
    probs = devig(odds, method="proportional")
    with np.errstate(invalid="ignore", divide="ignore"):
        overround = (1.0 / odds).sum(axis=1) - 1.0
    return np.column_stack([probs, overround])


def market_features(matches: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(market_values(pre_closing_odds(matches)), columns=MARKET_FEATURES,
                        index=matches.index)
