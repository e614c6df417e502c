"""One typed loader for `params.yaml` (what changes results) and `conf/runtime.yaml` (where things run).

Environment variables override endpoints only: DATA_DIR, RAY_ADDRESS, MLFLOW_TRACKING_URI,
MLFLOW_ARTIFACT_ROOT.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    leagues: list[str]
    first_season: str
    last_season: str
    extra_leagues: list[str] = Field(default_factory=list)


class FeatureParams(_Strict):
    elo_initial: float = 1500.0
    elo_k: float = 20.0
    elo_home_advantage: float = 65.0
    pi_lambda: float = 0.06
    pi_gamma: float = 0.5
    form_window: int = Field(6, ge=1)
    h2h_window: int = Field(6, ge=1)
    rest_cap_days: int = Field(30, ge=1)


class SplitParams(_Strict):
    validation_seasons: list[str]
    test_seasons: list[str]


class ModelParams(_Strict):
    seed: int = 42
    max_depth: int = 3
    learning_rate: float = 0.02
    n_estimators: int = 3000
    early_stopping_rounds: int = 150
    min_child_weight: float = 20.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    calibration_methods: list[Literal["none", "isotonic", "temperature"]] = ["none"]


class PromotionParams(_Strict):
    max_logloss: float
    max_ece: float
    max_rps: float
    rps_tolerance: float = 0.0


class Params(_Strict):
    data: DataParams
    as_of: date
    features: FeatureParams
    split: SplitParams
    model: ModelParams
    promotion: PromotionParams


class DataConf(_Strict):
    dir: Path | None = None
    url_template: str
    extra_url_template: str


class RayConf(_Strict):
    address: str | None = None
    num_cpus: int = 2


class MlflowConf(_Strict):
    tracking_uri: str
    artifact_root: str
    experiment: str
    model_name: str


class PathsConf(_Strict):
    raw: Path
    interim: Path
    features: Path
    splits: Path
    model_dir: Path
    reports: Path


class Runtime(_Strict):
    data: DataConf
    ray: RayConf
    mlflow: MlflowConf
    paths: PathsConf


class Config(_Strict):
    params: Params
    runtime: Runtime


def _env_overrides(raw: dict, env: dict[str, str]) -> dict:
    overrides = {
        ("data", "dir"): env.get("DATA_DIR"),
        ("ray", "address"): env.get("RAY_ADDRESS"),
        ("mlflow", "tracking_uri"): env.get("MLFLOW_TRACKING_URI"),
        ("mlflow", "artifact_root"): env.get("MLFLOW_ARTIFACT_ROOT"),
    }
    for (section, key), value in overrides.items():
        if value:
            raw.setdefault(section, {})[key] = value
    return raw


def load_config(params_path: str | Path = "params.yaml",
                runtime_path: str | Path = "conf/runtime.yaml",
                env: dict[str, str] | None = None) -> Config:
    """Read both files; relative paths are taken from the working directory, as DVC runs stages."""
    params = yaml.safe_load(Path(params_path).read_text())
    runtime = yaml.safe_load(Path(runtime_path).read_text())
    runtime = _env_overrides(runtime, dict(os.environ) if env is None else env)
    return Config(params=Params.model_validate(params), runtime=Runtime.model_validate(runtime))
