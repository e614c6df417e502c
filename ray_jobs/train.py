"""Train the XGBoost outcome model and choose its calibration on validation
(`python -m ray_jobs.train`). The test split is not read here."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config, ModelParams, SearchSpace
from soccerpredict.features.build import FEATURE_COLUMNS, feature_contract
from soccerpredict.io import write_json
from soccerpredict.metrics.scoring import outcome_index, score_all
from soccerpredict.models.calibration import choose_calibration
from soccerpredict.models.predictor import Predictor
from soccerpredict.models.xgb import feature_importance, predict_proba, train_booster
from soccerpredict.plots import plot_feature_importance

log = logging.getLogger(__name__)


def train(train: pd.DataFrame, validation: pd.DataFrame,
          params: ModelParams) -> tuple[Predictor, dict[str, object]]:
    """Pure training: fit, early-stop and calibrate on validation; return the model and a summary."""
    y_train, y_val = outcome_index(train["result"]), outcome_index(validation["result"])
    booster = train_booster(train[FEATURE_COLUMNS], y_train, validation[FEATURE_COLUMNS], y_val,
                            params)
    raw_val = predict_proba(booster, validation[FEATURE_COLUMNS])
    calibrator, cv_scores = choose_calibration(params.calibration_methods, raw_val, y_val)
    predictor = Predictor(booster, calibrator, feature_contract())
    summary: dict[str, object] = {
        "best_iteration": int(booster.best_iteration),
        "calibration": calibrator.method,
        "calibration_cv_log_loss": cv_scores,
        "validation_uncalibrated": score_all(raw_val, y_val),
        "n_train": len(train),
        "n_validation": len(validation),
    }
    return predictor, summary


def model_params(cfg: Config) -> ModelParams:
    """params.yaml's model section, with the searched values replaced by the tuned ones if any."""
    path = Path(cfg.runtime.paths.best_params)
    if not path.exists():
        log.warning("no tuned parameters at %s; training with params.yaml's model section", path)
        return cfg.params.model
    tuned = json.loads(path.read_text())["model"]
    searched = set(SearchSpace.model_fields) | {"early_stopping_metric"}
    return cfg.params.model.model_copy(update={k: v for k, v in tuned.items() if k in searched})


def run(cfg: Config) -> dict[str, object]:
    paths = cfg.runtime.paths
    params = model_params(cfg)
    predictor, summary = train(pd.read_parquet(paths.split_file("train")),
                               pd.read_parquet(paths.split_file("validation")), params)
    summary["params"] = params.model_dump(mode="json")
    model_dir = Path(cfg.runtime.paths.model_dir)
    predictor.save(model_dir)
    write_json(summary, paths.train_summary)
    importance = feature_importance(predictor.booster)
    plot_feature_importance(importance, Path(cfg.runtime.paths.reports) / "plots" /
                            "feature_importance.png")
    log.info("trained: best iteration %s, calibration %s", summary["best_iteration"],
             summary["calibration"])
    return summary


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
