"""The market baseline: the best pure-market forecaster, chosen on validation seasons.

A candidate is one book's pre-closing 1X2 prices (Pinnacle, the market average, the best price)
with one de-vig method (proportional, power, Shin). Closing prices are never a candidate.
`MarketConsensus` pools books instead of picking one: it is the market forecast the `with_market`
booster corrects. Rows where the chosen book (or every pooled book) has no price fall back to the de-vigged market the feature table
carries (`market_prob_*`: the average, else Pinnacle, else Bet365), so every row with any
pre-closing 1X2 price gets a baseline forecast.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.features.build import BASELINE_BOOKS, MARKET_FEATURES
from soccerpredict.metrics.implied import DevigMethod, devig
from soccerpredict.metrics.scoring import log_loss, outcome_index, rps_average

DEVIG_METHODS: tuple[DevigMethod, ...] = ("proportional", "power", "shin")
# not a book: the one 1X2 price set the feature table de-vigs (`market_prob_*`), what a request
# with a single price set carries; the `with_market_1x2` tier's baseline
MARKET_SET = "market"
_SIDES = ("home", "draw", "away")
_MIN_PROB = 1e-9


@dataclass(frozen=True)
class MarketBaseline:
    book: str = "avg"
    method: DevigMethod = "proportional"

    @property
    def name(self) -> str:
        return f"{self.book}/{self.method}"

    @property
    def columns(self) -> list[str]:
        """The prices this baseline reads when they are there."""
        if self.book == MARKET_SET:
            return MARKET_FEATURES[:3]
        return [f"{self.book}_{side}" for side in _SIDES]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 3) probabilities; NaN rows only where no pre-closing 1X2 price exists at all."""
        if self.book == MARKET_SET:
            return frame[MARKET_FEATURES[:3]].to_numpy(dtype=float)
        odds = frame.reindex(columns=self.columns).to_numpy(dtype=float)
        probs = devig(odds, method=self.method)
        missing = ~np.isfinite(probs).all(axis=1)
        if missing.any():
            probs[missing] = frame[MARKET_FEATURES[:3]].to_numpy(dtype=float)[missing]
        return probs

    def to_dict(self) -> dict[str, str]:
        return {"book": self.book, "method": self.method}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketBaseline:
        return cls(book=str(data["book"]), method=data["method"])


@dataclass(frozen=True)
class MarketConsensus:
    """The geometric mean of several books' de-vigged pre-closing 1X2 probabilities, renormalised.

    Pooling the sharp book (Pinnacle) with the market average beat picking either on one
    validation season, on the backtest's selection folds (docs/forecasting.md). A row uses the
    books it has; without any, the feature table's de-vigged market.
    """

    books: tuple[str, ...] = ("ps", "avg")
    method: DevigMethod = "power"

    @property
    def name(self) -> str:
        return f"{'+'.join(self.books)}/{self.method}"

    @property
    def columns(self) -> list[str]:
        """Every book's prices: what a row needs to be answered from the full consensus."""
        return [f"{book}_{side}" for book in self.books for side in _SIDES]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        logs = np.stack(
            [
                np.log(np.clip(_book(frame, book, self.method), _MIN_PROB, 1.0))
                for book in self.books
            ]
        )
        present = np.isfinite(logs).all(axis=2)  # (books, rows)
        total = np.where(present[:, :, None], logs, 0.0).sum(axis=0)
        count = present.sum(axis=0)
        mean = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)
        probs = np.exp(mean - mean.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        missing = count == 0
        if missing.any():
            probs[missing] = frame[MARKET_FEATURES[:3]].to_numpy(dtype=float)[missing]
        return probs

    def to_dict(self) -> dict[str, Any]:
        return {"books": list(self.books), "method": self.method}


MarketForecast = MarketBaseline | MarketConsensus


def market_forecast_from_dict(data: dict[str, Any]) -> MarketForecast:
    """A saved single-book baseline ({"book", "method"}) or consensus ({"books", "method"})."""
    if "books" in data:
        return MarketConsensus(books=tuple(str(b) for b in data["books"]), method=data["method"])
    return MarketBaseline.from_dict(data)


def _book(frame: pd.DataFrame, book: str, method: DevigMethod) -> np.ndarray:
    cols = [f"{book}_{side}" for side in _SIDES]
    return devig(frame.reindex(columns=cols).to_numpy(dtype=float), method=method)


def candidates() -> list[MarketBaseline]:
    return [MarketBaseline(b, m) for b, m in product(BASELINE_BOOKS, DEVIG_METHODS)]


def choose_market_baseline(
    validation: pd.DataFrame,
) -> tuple[MarketBaseline, dict[str, dict[str, float]]]:
    """The candidate with the lowest validation RPS, judged on the matches every book priced."""
    played = validation[validation["result"].notna()]
    named = {
        c.name: (
            c,
            devig(
                played.reindex(columns=[f"{c.book}_{s}" for s in _SIDES]).to_numpy(dtype=float),
                method=c.method,
            ),
        )
        for c in candidates()
    }
    common = np.logical_and.reduce([np.isfinite(p).all(axis=1) for _, p in named.values()])
    if not common.any():
        return MarketBaseline(), {}
    y = outcome_index(played["result"])[common]
    scores = {
        name: {
            "rps": rps_average(p[common], y),
            "log_loss": log_loss(p[common], y),
            "n": float(common.sum()),
        }
        for name, (_, p) in named.items()
    }
    best = min(scores, key=lambda n: (scores[n]["rps"], scores[n]["log_loss"]))
    return named[best][0], scores
