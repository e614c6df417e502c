"""Hyperparameter search on the Ray cluster: Optuna (TPE, seeded) + ASHA over boosting rounds
(`python -m ray_jobs.tune`), of the `ratings_only` tier's booster on that tier's inputs, around
its hand-set params (`forecasters.ratings_only`). Every trial is an MLflow run nested under one
parent run. The best config is refitted as `train` fits the tier, beside the hand-set params, both
scored on the validation seasons; the better one goes to a DVC-tracked file that `ray_jobs.train`
reads (soccerpredict.tuning). An interrupted search (Ctrl-C) resumes from its storage path when
started again with the same settings."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict import registry
from soccerpredict.config import Config, ModelParams, SearchSpace, TuneParams
from soccerpredict.features.build import FEATURE_COLUMNS, feature_contract
from soccerpredict.io import write_json
from soccerpredict.metrics.scoring import outcome_index
from soccerpredict.models.xgb import train_booster
from soccerpredict.tuning import (
    INTEGER_PARAMS,
    SCORE_KEYS,
    TUNED_COLUMNS,
    RoundReporter,
    asha_max_t,
    choose_tier_params,
    model_params_for,
    tier_rows,
    validate_budget,
)

log = logging.getLogger(__name__)
UNFINISHED = {"PENDING", "RUNNING", "PAUSED"}


def tune_space(space: SearchSpace) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for name, r in space:
        if name in INTEGER_PARAMS:
            make = tune.lograndint if r.log else tune.randint
            out[name] = make(int(r.low), int(r.high) + 1)
        else:
            out[name] = (tune.loguniform if r.log else tune.uniform)(r.low, r.high)
    return out


def trial(
    config: dict[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    base: ModelParams,
    params: TuneParams,
) -> None:
    """One Tune trial: boost the tier on its inputs, reporting validation RPS and log-loss every
    few rounds."""
    from ray import tune

    model = model_params_for(config, base, params.early_stopping_rounds, params.metric)
    reporter = RoundReporter(tune.report, params.report_every)
    booster = train_booster(
        train[TUNED_COLUMNS],
        outcome_index(train["result"]),
        validation[TUNED_COLUMNS],
        outcome_index(validation["result"]),
        model,
        nthread=1,
        callbacks=[reporter],
    )
    tune.report(
        reporter.last
        | {"best_iteration": float(booster.best_iteration), "best_score": float(booster.best_score)}
    )


def search_key(params: TuneParams, base: ModelParams, features_sha: str | None) -> str:
    """Same settings and data → same experiment folder, which is what makes resuming safe."""
    blob = json.dumps(
        [params.model_dump(mode="json"), base.model_dump(mode="json"), features_sha],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_tuner(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    base: ModelParams,
    p: TuneParams,
    path: Path,
    callbacks: list[Any] | None = None,
    max_concurrent_trials: int | None = None,
) -> Any:
    """A fresh search: OptunaSearch (TPE, seeded) proposes, ASHA stops weak trials early."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    return tune.Tuner(
        _trainable(train, validation, base, p),
        param_space=tune_space(p.space),
        tune_config=tune.TuneConfig(
            metric=p.metric,
            mode="min",
            num_samples=p.num_samples,
            max_concurrent_trials=max_concurrent_trials or p.max_concurrent_trials,
            time_budget_s=p.time_budget_s,
            search_alg=OptunaSearch(seed=p.seed),
            reuse_actors=p.reuse_actors,
            scheduler=ASHAScheduler(
                time_attr="training_iteration",
                grace_period=p.grace_period,
                reduction_factor=p.reduction_factor,
                max_t=asha_max_t(p),
            ),
        ),
        run_config=tune.RunConfig(
            name=path.name,
            storage_path=str(path.parent.resolve()),
            failure_config=tune.FailureConfig(max_failures=p.max_failures),
            callbacks=list(callbacks or []),
            verbose=1,
        ),
    )


def _trainable(
    train: pd.DataFrame, validation: pd.DataFrame, base: ModelParams, p: TuneParams
) -> Any:
    from ray import tune

    # with_parameters: the tables go into the object store once, not once per trial
    return tune.with_resources(
        tune.with_parameters(trial, train=train, validation=validation, base=base, params=p),
        {"cpu": 1},
    )


def make_tuner(
    cfg: Config, train: pd.DataFrame, validation: pd.DataFrame, path: Path, parent_run_id: str
) -> Any:
    """Resume the search stored at `path` if there is one, else start it with MLflow logging."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    p = cfg.params.tune
    if tune.Tuner.can_restore(str(path)):
        log.info("resuming the interrupted search at %s", path)
        return tune.Tuner.restore(
            str(path),
            trainable=_trainable(train, validation, cfg.params.forecasters.ratings_only, p),
            resume_errored=True,
        )
    mlflow_cb = MLflowLoggerCallback(
        tracking_uri=cfg.runtime.mlflow.tracking_uri,
        experiment_name=cfg.runtime.mlflow.experiment,
        tags={"mlflow.parentRunId": parent_run_id, "stage": "tune"},
    )
    return build_tuner(
        train, validation, cfg.params.forecasters.ratings_only, p, path, callbacks=[mlflow_cb]
    )


def interrupted(grid: Any, p: TuneParams, elapsed_s: float) -> bool:
    """fit() returns normally after Ctrl-C; a short count before the time budget gives it away."""
    trials = grid._experiment_analysis.trials  # statuses are not on the public ResultGrid
    unfinished = any(t.status in UNFINISHED for t in trials)
    short = len(grid) < p.num_samples and elapsed_s < p.time_budget_s
    return unfinished or short


def summarise(grid: Any, p: TuneParams) -> dict[str, Any]:
    best = grid.get_best_result(metric=p.metric, mode="min", scope="all")
    trials = [
        {
            "config": r.config,
            **{k: r.metrics.get(k) for k in ("val_rps", "val_log_loss", "boosting_rounds")},
        }
        for r in grid
        if r.metrics
    ]
    failures = sum(t.num_failures for t in grid._experiment_analysis.trials)
    return {
        "metric": p.metric,
        "best_value": float(best.metrics_dataframe[p.metric].min()),
        "best_config": best.config,
        "n_trials": len(grid),
        "n_errors": grid.num_errors,
        "retried_failures": failures,
        "trials": trials,
    }


def check_inputs(cfg: Config, tables: dict[str, pd.DataFrame]) -> None:
    """Refuse tables that break the feature contract before any trial starts (GateFailed)."""
    from soccerpredict.validation.gates import GateFailed, run_gate

    reports = Path(cfg.runtime.paths.reports)
    contract_path = cfg.runtime.paths.feature_contract
    stored = json.loads(contract_path.read_text()) if contract_path.exists() else None
    if stored != feature_contract():
        raise GateFailed(
            "features",
            f"{contract_path} does not match the code's feature contract "
            f"(schema {feature_contract()['schema_version']}); re-run `dvc repro "
            "features split`",
            contract_path,
        )
    for name, frame in tables.items():
        gate = run_gate(
            "features", frame, reports, feature_columns=FEATURE_COLUMNS, name=f"tune_{name}"
        )
        if "result" not in frame:
            raise GateFailed("features", f"{name} table: no result column", gate.report_path)
        try:
            outcome_index(frame["result"])
        except ValueError as err:
            raise GateFailed("features", f"{name} table: {err}", gate.report_path) from None


def search(cfg: Config, train: pd.DataFrame, validation: pd.DataFrame) -> dict[str, Any] | None:
    """Run (or resume) the search; None when it was interrupted and should be resumed."""
    import mlflow

    p = cfg.params.tune
    paths = cfg.runtime.paths
    base = cfg.params.forecasters.ratings_only
    key = search_key(p, base, registry.file_sha256(paths.split_file("train")))
    path = Path(cfg.runtime.paths.tune_storage).resolve() / f"search-{key}"
    with registry.fluent_run(cfg, run_name=f"tune-{key}") as parent:
        mlflow.log_params({f"tune.{k}": v for k, v in p.model_dump(exclude={"space"}).items()})
        mlflow.log_dict(p.space.model_dump(), "search_space.json")
        started = time.monotonic()
        with ray_session(cfg):
            grid = make_tuner(cfg, train, validation, path, parent.info.run_id).fit()
        if interrupted(grid, p, time.monotonic() - started):
            mlflow.set_tag("search_state", "interrupted")
            return None
        summary = summarise(grid, p)
        mlflow.log_metric(f"best_{p.metric}", summary["best_value"])
        mlflow.log_dict(summary, "tune_summary.json")
    shutil.rmtree(path, ignore_errors=True)  # finished: a rerun with new settings starts afresh
    return summary


def run(cfg: Config) -> dict[str, Any] | None:
    p = cfg.params.tune
    validate_budget(p)
    paths = cfg.runtime.paths
    train = pd.read_parquet(paths.split_file("train"))
    validation = pd.read_parquet(paths.split_file("validation"))
    check_inputs(cfg, {"train": train, "validation": validation})
    train, validation = tier_rows(train), tier_rows(validation)
    summary = search(cfg, train, validation)
    if summary is None:
        log.warning("search interrupted; run the same command again to resume it")
        raise SystemExit(130)
    hand_set = cfg.params.forecasters.ratings_only
    tuned = model_params_for(
        summary["best_config"], hand_set, p.early_stopping_rounds, summary["metric"]
    )
    choice = choose_tier_params(train, validation, hand_set, tuned, summary["metric"])
    choice["search_best_value"] = summary["best_value"]
    target = Path(cfg.runtime.paths.best_params)
    write_json(choice, target, digits=None)  # params train reads: exact floats
    write_json(summary | {"choice": choice}, target.with_name("summary.json"))
    key = SCORE_KEYS[summary["metric"]]
    log.info(
        "%s on validation: hand-set %s %.5f, tuned %.5f (%s); train uses the %s params",
        choice["tier"],
        key,
        choice["hand_set"]["validation"][key],
        choice["tuned"]["validation"][key],
        summary["best_config"],
        choice["chosen"],
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
