"""A trained outcome model: one forecaster per tier of input, and the feature contract.

Tiers, in order of preference: `with_market` (every pre-closing price: several books, totals,
handicap; its booster learns corrections to a market consensus's log-probabilities, passed as
XGBoost's base margin, and keeps a fixed share `correction` of them), `with_market_1x2` (one 1X2
price set, what most clients have; the same idea over that set's de-vigged probabilities, trained
on that input: on the backtest's selection folds it beat `with_market` fed the same one set,
docs/forecasting.md) and
`ratings_only` (never reads a price) and `ratings_only_all_leagues` (the same inputs, trained on the
extra leagues' rows too: it answers every league `ratings_only` was not trained on). Each row is
answered by the first tier whose inputs it has (`Forecaster.requires`) and whose leagues hold the
row's (`Forecaster.leagues`): a fixture with one price set gets the tier built for it, one without
usable odds gets `ratings_only`, never a market model fed missing prices.
Saved as plain files (XGBoost UBJ + JSON), so MLflow, Serve and tests load the same thing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from soccerpredict.io import write_json
from soccerpredict.models.calibration import Calibrator
from soccerpredict.models.market import (
    MarketBaseline,
    MarketForecast,
    market_forecast_from_dict,
)
from soccerpredict.models.xgb import load_booster, predict_proba, save_booster

PROBABILITY_COLUMNS = ["prob_home", "prob_draw", "prob_away"]
WITH_MARKET, WITH_MARKET_1X2, RATINGS_ONLY = "with_market", "with_market_1x2", "ratings_only"
RATINGS_ONLY_ALL = "ratings_only_all_leagues"
TIERS: tuple[str, ...] = (WITH_MARKET, WITH_MARKET_1X2, RATINGS_ONLY, RATINGS_ONLY_ALL)
_MIN_PROB = 1e-6
# a served feature vector carries its fixture's league as one more float (the vector is what is
# cached, batched and queued): a tier with `leagues` routes on it where a frame has no `league`
LEAGUE_CODE = "league_code"


@cache  # a handful of leagues, asked for on every served request and every routing
def league_code(league: str) -> float:
    """A stable number for a league name, exact in a float64 (48 bits of its SHA-256)."""
    return float(int.from_bytes(hashlib.sha256(league.encode()).digest()[:6], "big"))


CONTRACT_FILE = "feature_contract.json"  # in a saved model's folder and in its MLflow run


def market_margin(baseline: MarketForecast, frame: pd.DataFrame) -> np.ndarray:
    """The baseline's log-probabilities: the base margin a `with_market` booster adds to."""
    return np.log(np.clip(baseline.predict_proba(frame), _MIN_PROB, 1.0))


def usable_rows(
    baseline: MarketForecast | None, frame: pd.DataFrame, margin: np.ndarray | None = None
) -> np.ndarray:
    """Rows a forecaster on `baseline` can answer: all of them, or those with a market forecast
    (`margin`: the baseline's log-probabilities on `frame`, when already computed)."""
    if baseline is None:
        return np.ones(len(frame), bool)
    if margin is None:
        margin = market_margin(baseline, frame)
    return np.isfinite(margin).all(axis=1)


class ContractMismatch(ValueError):
    """The features offered are not the ones the model was trained on."""


@dataclass
class Forecaster:
    """One booster over `columns`; with a `baseline` (the market forecast it starts from), the
    booster adds `correction` times its trees' output to the baseline's log-probabilities.
    A row is routed to it only if every column of `requires` is known (its baseline's own
    books for `with_market`) and, when `leagues` is set and the frame names its rows' leagues
    (`league`, or a served vector's `league_code`), its league is one of them (the leagues it
    was trained on), though it can score any row its baseline forecasts (`usable`)."""

    name: str
    booster: xgb.Booster
    calibrator: Calibrator
    columns: list[str]
    baseline: MarketForecast | None = None
    requires: list[str] = field(default_factory=list)
    correction: float = 1.0
    leagues: tuple[str, ...] | None = None

    def margin(self, frame: pd.DataFrame) -> np.ndarray | None:
        return None if self.baseline is None else market_margin(self.baseline, frame)

    def usable(self, frame: pd.DataFrame, margin: np.ndarray | None = None) -> np.ndarray:
        return usable_rows(self.baseline, frame, margin)

    def answers(self, frame: pd.DataFrame, margin: np.ndarray | None = None) -> np.ndarray:
        """Rows routed to this forecaster: usable, with every input it requires (`margin`:
        `self.margin(frame)`, when already computed: the market forecast is the costly part)."""
        known = frame.reindex(columns=self.requires).to_numpy(dtype=float)
        rows = self.usable(frame, margin) & np.isfinite(known).all(axis=1)
        if self.leagues is not None:
            if "league" in frame:
                rows &= frame["league"].isin(self.leagues).to_numpy()
            elif LEAGUE_CODE in frame:
                codes = [league_code(lg) for lg in self.leagues]
                rows &= frame[LEAGUE_CODE].isin(codes).to_numpy()
            # neither: the frame has the features only (an MLflow pyfunc caller, whose
            # signature holds the feature columns), and the first tier that fits answers
        return rows

    def raw_proba(self, frame: pd.DataFrame, margin: np.ndarray | None = None) -> np.ndarray:
        if margin is None:
            margin = self.margin(frame)
        probs = predict_proba(self.booster, frame[self.columns], base_margin=margin)
        if margin is None or self.correction == 1.0:
            return probs
        # log probs = margin + trees - a per-row constant, which the softmax drops
        z = margin + self.correction * (np.log(np.clip(probs, _MIN_PROB, 1.0)) - margin)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_proba(self, frame: pd.DataFrame, margin: np.ndarray | None = None) -> np.ndarray:
        return self.calibrator.apply(self.raw_proba(frame, margin))

    def save(self, directory: Path) -> None:
        save_booster(self.booster, directory / "booster.ubj")
        # model state, not a report: exact floats (write_json rounds reports)
        write_json(self.calibrator.to_dict(), directory / "calibrator.json", digits=None)
        write_json(
            {
                "name": self.name,
                "columns": self.columns,
                "baseline": None if self.baseline is None else self.baseline.to_dict(),
                "requires": self.requires,
                "correction": self.correction,
                "leagues": None if self.leagues is None else list(self.leagues),
            },
            directory / "forecaster.json",
            digits=None,
        )

    @classmethod
    def load(cls, directory: Path) -> Forecaster:
        meta = json.loads((directory / "forecaster.json").read_text())
        return cls(
            name=meta["name"],
            booster=load_booster(directory / "booster.ubj"),
            calibrator=Calibrator.from_dict(
                json.loads((directory / "calibrator.json").read_text())
            ),
            columns=list(meta["columns"]),
            baseline=None
            if meta["baseline"] is None
            else market_forecast_from_dict(meta["baseline"]),
            requires=list(meta.get("requires", [])),  # a model saved before routing had none
            correction=float(meta.get("correction", 1.0)),
            leagues=None if meta.get("leagues") is None else tuple(meta["leagues"]),
        )


@dataclass
class Predictor:
    forecasters: dict[str, Forecaster]  # tiers in order of preference
    contract: dict[str, Any]
    # the best single book chosen on validation: what `with_market` is measured against
    market_baseline: MarketBaseline | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.contract["columns"])

    def single_threaded(self) -> Predictor:
        """Every tier's booster predicts on one thread (XGBoost's `nthread`; a booster trained
        here keeps its training `nthread`, a loaded one takes every core OpenMP sees). A request
        holds a handful of rows, and waking OpenMP's idle threads costs more than they save:
        on this 2-core machine a one-row prediction after 0.1 s idle took ~20 ms on two
        threads against ~1 ms on one (benchmarks/README.md)."""
        for forecaster in self.forecasters.values():
            forecaster.booster.set_param({"nthread": 1})
        return self

    def check_contract(self, expected: dict[str, Any]) -> None:
        if (
            expected.get("schema_version") != self.contract.get("schema_version")
            or list(expected.get("columns", [])) != self.columns
        ):
            raise ContractMismatch(
                f"model expects feature schema {self.contract.get('schema_version')} "
                f"with {len(self.columns)} columns; offered {expected.get('schema_version')}"
            )

    def _checked(self, features: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ContractMismatch(f"missing feature columns: {missing}")
        return features.reset_index(drop=True)

    def tiers(self, features: pd.DataFrame) -> np.ndarray:
        """The name of the forecaster that answers each row."""
        frame = self._checked(features)
        names = np.full(len(frame), "", dtype=object)
        for name, forecaster in self.forecasters.items():
            names[(names == "") & forecaster.answers(frame)] = name
        return names

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_with_tiers(features)[0]

    def predict_with_tiers(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities and, per row, the forecaster that gave them (as `tiers`), in one
        pass: each forecaster's market forecast is computed once, for routing and margin alike
        (it was three times per request, half the cost of a served prediction)."""
        frame = self._checked(features)
        names = np.full(len(frame), "", dtype=object)
        probs = np.full((len(frame), len(PROBABILITY_COLUMNS)), np.nan)
        for name, forecaster in self.forecasters.items():
            if not (names == "").any():
                break
            margin = forecaster.margin(frame)
            rows = (names == "") & forecaster.answers(frame, margin)
            names[rows] = name
            if rows.any():
                probs[rows] = forecaster.predict_proba(
                    frame[rows], None if margin is None else margin[rows]
                )
        return probs, names

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            self.predict_proba(features), columns=PROBABILITY_COLUMNS, index=features.index
        )

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        for name, forecaster in self.forecasters.items():
            forecaster.save(directory / name)
        write_json({"tiers": list(self.forecasters)}, directory / "tiers.json")
        if self.market_baseline is not None:
            write_json(self.market_baseline.to_dict(), directory / "market_baseline.json")
        write_json(self.contract, directory / CONTRACT_FILE, digits=None)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        directory = Path(directory)
        names = json.loads((directory / "tiers.json").read_text())["tiers"]
        odd = [n for n in names if not (isinstance(n, str) and n.isidentifier())]
        if odd:  # a tier is a folder of this directory, never a path out of it
            raise ValueError(f"tier names must be plain identifiers, not {odd}")
        baseline = directory / "market_baseline.json"
        return cls(
            forecasters={n: Forecaster.load(directory / n) for n in names},
            contract=json.loads((directory / CONTRACT_FILE).read_text()),
            market_baseline=MarketBaseline.from_dict(json.loads(baseline.read_text()))
            if baseline.exists()
            else None,
        )
