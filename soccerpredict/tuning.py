"""Hyperparameter search pieces that need no Ray: the space, the per-round metrics, the result.

`ray_jobs.tune` turns `SearchSpace` into Tune distributions and wires `RoundReporter` to
`ray.tune.report`; everything here is plain XGBoost and can be tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xgboost as xgb

from soccerpredict.config import ModelParams, SearchSpace, TuneParams

INTEGER_PARAMS = ("max_depth", "n_estimators")
METRIC_KEYS = {"val_rps": "rps", "val_log_loss": "mlogloss"}


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
