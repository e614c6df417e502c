"""Market-implied probabilities from pre-closing odds. Closing odds are never a feature."""

from __future__ import annotations

import warnings

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
    return pd.DataFrame(
        market_values(pre_closing_odds(matches)), columns=MARKET_FEATURES, index=matches.index
    )


# the books compared for dispersion: every single book the files carry in most seasons
DISPERSION_BOOKS: tuple[str, ...] = ("b365", "ps", "bw", "iw", "wh", "vc")
EXTRA_MARKET_FEATURES: list[str] = [
    "mkt_ps_minus_avg_home",
    "mkt_ps_minus_avg_away",
    "mkt_dispersion_home",
    "mkt_dispersion_away",
    "mkt_max_booksum",
    "mkt_prob_over25",
    "mkt_ah_line",
    "mkt_ah_prob_home",
]


def _book_probs(matches: pd.DataFrame, book: str) -> np.ndarray:
    cols = [f"{book}_{side}" for side in ("home", "draw", "away")]
    if not set(cols) <= set(matches.columns):
        return np.full((len(matches), 3), np.nan)
    return devig(matches[cols].to_numpy(dtype=float), method="proportional")


def _column(matches: pd.DataFrame, name: str) -> np.ndarray:
    if name not in matches.columns:
        return np.full(len(matches), np.nan)
    return matches[name].to_numpy(dtype=float)


def _two_way(matches: pd.DataFrame, first: str, second: str) -> np.ndarray:
    """De-vigged probability of the first side of a two-way market; NaN without both prices."""
    a, b = _column(matches, first), _column(matches, second)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1.0 / a) / (1.0 / a + 1.0 / b)
    return np.where((a > 1.0) & (b > 1.0), p, np.nan)


def _dispersion(matches: pd.DataFrame) -> np.ndarray:
    """(n, 2): the spread between books of the home and away probabilities (NaN under 2 books)."""
    stacked = np.stack([_book_probs(matches, b) for b in DISPERSION_BOOKS])
    counts = np.isfinite(stacked).all(axis=2).sum(axis=0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected
        spread = np.nanstd(stacked, axis=0)
    spread[counts < 2] = np.nan
    return spread[:, [0, 2]]


def extra_market_features(matches: pd.DataFrame) -> pd.DataFrame:
    """Sharp-minus-average, book dispersion, best prices, totals and handicap: all pre-closing."""
    ps_avg = _book_probs(matches, "ps") - _book_probs(matches, "avg")
    max_odds = np.column_stack([_column(matches, f"max_{s}") for s in ("home", "draw", "away")])
    with np.errstate(invalid="ignore", divide="ignore"):
        max_booksum = (1.0 / max_odds).sum(axis=1) - 1.0
    values = np.column_stack(
        [
            ps_avg[:, 0],
            ps_avg[:, 2],
            _dispersion(matches),
            max_booksum,
            _two_way(matches, "avg_over25", "avg_under25"),
            _column(matches, "ah_line"),
            _two_way(matches, "avg_ah_home", "avg_ah_away"),
        ]
    )
    return pd.DataFrame(values, columns=EXTRA_MARKET_FEATURES, index=matches.index)
