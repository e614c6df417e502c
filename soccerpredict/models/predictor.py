"""A trained outcome model: booster, calibrator and the feature contract it was trained on.

Saved as plain files (XGBoost UBJ + JSON), so MLflow, Serve and tests load the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from soccerpredict.io import write_json
from soccerpredict.models.calibration import Calibrator
from soccerpredict.models.xgb import load_booster, predict_proba, save_booster

PROBABILITY_COLUMNS = ["prob_home", "prob_draw", "prob_away"]


class ContractMismatch(ValueError):
    """The features offered are not the ones the model was trained on."""


@dataclass
class Predictor:
    booster: xgb.Booster
    calibrator: Calibrator
    contract: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        return list(self.contract["columns"])

    def check_contract(self, expected: dict[str, Any]) -> None:
        if (expected.get("schema_version") != self.contract.get("schema_version")
                or list(expected.get("columns", [])) != self.columns):
            raise ContractMismatch(
                f"model expects feature schema {self.contract.get('schema_version')} "
                f"with {len(self.columns)} columns; offered {expected.get('schema_version')}")

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ContractMismatch(f"missing feature columns: {missing}")
        return self.calibrator.apply(predict_proba(self.booster, features[self.columns]))

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.predict_proba(features), columns=PROBABILITY_COLUMNS,
                            index=features.index)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        save_booster(self.booster, directory / "booster.ubj")
        write_json(self.calibrator.to_dict(), directory / "calibrator.json", digits=None)
        write_json(self.contract, directory / "feature_contract.json", digits=None)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        directory = Path(directory)
        return cls(
            booster=load_booster(directory / "booster.ubj"),
            calibrator=Calibrator.from_dict(json.loads((directory / "calibrator.json").read_text())),
            contract=json.loads((directory / "feature_contract.json").read_text()),
        )
