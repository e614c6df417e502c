"""Hyperparameter search pieces that need no Ray: the space, the per-round metrics, the result.

`ray_jobs.tune` turns `SearchSpace` into Tune distributions and wires `RoundReporter` to
`ray.tune.report`; everything here is plain XGBoost and can be tested without a cluster.

The search tunes one forecaster tier's booster (`TUNED_TIER`, `ratings_only`: the tier whose
forecast is all trees) on exactly that tier's inputs. Its best config is then refitted the way
`train` fits the tier (`fit_forecaster`: early stopping and calibration on validation) beside
the hand-set params, both scored on the validation seasons; `choose_tier_params` keeps the
hand-set params unless the search's are better there. `train` reads that choice
(`tier_params`). The test seasons are never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb

from soccerpredict.config import ForecasterParams, ModelParams, SearchSpace, TuneParams
from soccerpredict.features.build import RATINGS_COLUMNS
from soccerpredict.metrics.scoring import outcome_index, score_all
from soccerpredict.models.forecasters import fit_forecaster
from soccerpredict.models.predictor import RATINGS_ONLY, WITH_MARKET

INTEGER_PARAMS = ("max_depth", "n_estimators")
METRIC_KEYS = {"val_rps": "rps", "val_log_loss": "mlogloss"}
SCORE_KEYS = {"val_rps": "rps", "val_log_loss": "log_loss"}
# the tier the search tunes, and its inputs. `with_market` is not searched: it keeps a quarter of
# its trees' correction to the market consensus, so its booster moves its forecast little
TUNED_TIER = RATINGS_ONLY
TUNED_COLUMNS: list[str] = RATINGS_COLUMNS


def model_params_for(
    trial: dict[str, Any], base: ModelParams, early_stopping_rounds: int, metric: str = "val_rps"
) -> ModelParams:
    """ModelParams with a trial's values; integers rounded, everything else from `base`.

    Boosting stops on the metric the search selects on, in the trials and in the final model.
    """
    stopping_metric = METRIC_KEYS[metric]
    values = {
        k: (round(float(v)) if k in INTEGER_PARAMS else float(v))
        for k, v in trial.items()
        if k in SearchSpace.model_fields
    }
    return base.model_copy(
        update=values
        | {"early_stopping_rounds": early_stopping_rounds, "early_stopping_metric": stopping_metric}
    )


class RoundReporter(xgb.callback.TrainingCallback):
    """Reports the validation metrics every `every` boosting rounds (and at the last one)."""

    def __init__(self, report: Callable[[dict[str, float]], None], every: int) -> None:
        super().__init__()
        self.report, self.every = report, every
        self.last: dict[str, float] = {}

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        val = evals_log["val"]
        self.last = {
            "val_rps": float(val["rps"][-1]),
            "val_log_loss": float(val["mlogloss"][-1]),
            "boosting_rounds": float(epoch + 1),
        }
        if (epoch + 1) % self.every == 0:
            self.report(dict(self.last))
        return False


def asha_max_t(p: TuneParams) -> int:
    """The most reports a trial can make: every `report_every` rounds, plus the final one."""
    return int(p.space.n_estimators.high) // p.report_every + 2


def validate_budget(params: TuneParams) -> None:
    """Raise before any trial starts when the search cannot run as configured."""
    rounds = params.space.n_estimators.high
    if params.grace_period * params.report_every > rounds:
        raise ValueError(
            f"grace_period {params.grace_period} x report_every "
            f"{params.report_every} exceeds the most rounds a trial may run ({rounds})"
        )


def tier_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """What the tuned tier is fitted and scored on: played matches, its inputs and the result."""
    return frame.loc[frame["result"].notna(), [*TUNED_COLUMNS, "result"]]


def validation_scores(
    train: pd.DataFrame, validation: pd.DataFrame, params: ModelParams, nthread: int = 2
) -> dict[str, Any]:
    """The tuned tier fitted as `train` fits it, scored (calibrated) on the validation seasons."""
    forecaster, summary = fit_forecaster(
        TUNED_TIER, TUNED_COLUMNS, None, train, validation, params, nthread
    )
    played = validation[validation["result"].notna()]
    probs = forecaster.predict_proba(played)
    return score_all(probs, outcome_index(played["result"])) | {
        "best_iteration": summary["best_iteration"],
        "calibration": summary["calibration"],
    }


def choose_tier_params(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    hand_set: ModelParams,
    tuned: ModelParams,
    metric: str,
    nthread: int = 2,
) -> dict[str, Any]:
    """Both param sets refitted and scored on validation; the search's are kept only if better
    on `metric`. The record `train` reads (`tier_params`)."""
    key = SCORE_KEYS[metric]
    scores = {
        name: validation_scores(train, validation, params, nthread)
        for name, params in (("hand_set", hand_set), ("tuned", tuned))
    }
    chosen = "tuned" if scores["tuned"][key] < scores["hand_set"][key] else "hand_set"
    return {
        "tier": TUNED_TIER,
        "metric": metric,
        "chosen": chosen,
        "params": (tuned if chosen == "tuned" else hand_set).model_dump(mode="json"),
        "hand_set": {"params": hand_set.model_dump(mode="json"), "validation": scores["hand_set"]},
        "tuned": {"params": tuned.model_dump(mode="json"), "validation": scores["tuned"]},
    }


class StaleSearch(ValueError):
    """The search's record was made around other hand-set params than params.yaml's."""


def tier_params(forecasters: ForecasterParams, best_params: Path) -> ForecasterParams:
    """`forecasters` with the search's choice for its tier, if a search has run. A record made
    around other hand-set params than these is refused: the search must run again."""
    if not best_params.exists():
        return forecasters
    record = json.loads(best_params.read_text())
    tier = record.get("tier")
    if tier not in (RATINGS_ONLY, WITH_MARKET) or "hand_set" not in record:
        raise StaleSearch(f"{best_params} names no tier's search; run `dvc repro tune`")
    hand_set = getattr(forecasters, tier)
    if record["hand_set"]["params"] != hand_set.model_dump(mode="json"):
        raise StaleSearch(
            f"{best_params} was searched around other {tier} params than "
            "params.yaml's `forecasters`; run the tune stage again (`dvc repro tune`)"
        )
    return forecasters.model_copy(update={tier: ModelParams.model_validate(record["params"])})
