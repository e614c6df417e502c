"""What Ray Tune costs over a plain Optuna study for the project's default search budget
(`python -m benchmarks.tune_overhead [--quick] [--out reports/benchmarks/tune_overhead.json]`).

Three searches over the same budget from params.yaml (num_samples, space, seed, ASHA settings,
metric, time budget):

* Ray Tune, max_concurrent_trials=1 and =2: the pieces of `ray_jobs.tune` (`tune_space`, `trial`,
  OptunaSearch(seed) + ASHAScheduler), built like `make_tuner` but WITHOUT the MLflow callback and
  with a temporary storage_path that is deleted afterwards, so MLflow and the registry are untouched.
  Both share one local `ray.init(num_cpus=2, include_dashboard=False)` on 127.0.0.1.
* A sequential Optuna study in this process: TPESampler(seed) over the same space and a
  SuccessiveHalvingPruner configured like ASHA (min_resource=grace_period, reduction_factor), fed
  the same validation metric every `report_every` boosting rounds from an XGBoost callback.

Wall time runs from just before a search is built to its summary being available; loading the
splits, imports, ray.init and ray.shutdown are timed separately. Run from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import Config, ModelParams, TuneParams, load_config
from soccerpredict.io import write_json
from soccerpredict.metrics.scoring import outcome_index
from soccerpredict.models.xgb import train_booster
from soccerpredict.tuning import (
    INTEGER_PARAMS,
    TUNED_COLUMNS,
    RoundReporter,
    asha_max_t,
    model_params_for,
    tier_rows,
    validate_budget,
)

QUICK_SAMPLES = 3
QUICK_MAX_ROUNDS = 200
RUN_LABELS = {
    "optuna_sequential": "Optuna sequential (1 process)",
    "tune_c1": "Ray Tune, max_concurrent_trials=1",
    "tune_c2": "Ray Tune, max_concurrent_trials=2",
}


# ---------------------------------------------------------------------------------------- setup


def budget_params(p: TuneParams, quick: bool, time_budget_s: float | None) -> TuneParams:
    """The params.yaml budget, or its smoke-test version; validated like the real search's."""
    raw = p.model_dump(mode="json")
    if quick:
        rounds = raw["space"]["n_estimators"]
        rounds["high"] = QUICK_MAX_ROUNDS
        # a Range needs low < high: the default low (200) would leave no range at all
        rounds["low"] = min(rounds["low"], QUICK_MAX_ROUNDS // 2)
        raw["num_samples"] = QUICK_SAMPLES
    if time_budget_s is not None:
        raw["time_budget_s"] = time_budget_s
    return TuneParams.model_validate(raw)


def asha_rungs(p: TuneParams) -> list[int]:
    """The milestones (in reports) at which ASHA may stop a trial; Ray's formula, one bracket."""
    n = int(np.log(asha_max_t(p) / p.grace_period) / np.log(p.reduction_factor) + 1)
    return sorted(p.grace_period * p.reduction_factor**k for k in range(n))


def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import optuna
    import ray
    import xgboost

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "xgboost": xgboost.__version__,
        "loadavg_at_start": list(os.getloadavg()),
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def load_splits(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    splits = Path(cfg.runtime.paths.splits)
    needed = [splits / "train.parquet", splits / "validation.parquet"]
    missing = [str(f) for f in needed if not f.is_file()]
    if missing:
        print(
            f"missing {', '.join(missing)}: run the pipeline first (`dvc repro`, or at least "
            "`dvc repro split`) from the repository root",
            file=sys.stderr,
        )
        raise SystemExit(2)
    # what the search tunes on: the tuned tier's inputs, played matches only
    return tier_rows(pd.read_parquet(needed[0])), tier_rows(pd.read_parquet(needed[1]))


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        math.isclose(float(a[k]), float(b[k]), rel_tol=1e-9) for k in a
    )


# ------------------------------------------------------------------------ sequential Optuna


class PruningReporter(RoundReporter):
    """RoundReporter whose reports go to `trial.report(metric, report number)`; it ends boosting
    as soon as the pruner says so. The report number is what Tune calls training_iteration."""

    def __init__(self, ot_trial: Any, every: int, metric: str) -> None:
        super().__init__(self._report, every)
        self.ot_trial, self.metric, self.steps, self.pruned = ot_trial, metric, 0, False
        self.values: list[float] = []

    def _report(self, metrics: dict[str, float]) -> None:
        self.steps += 1
        self.values.append(metrics[self.metric])
        self.ot_trial.report(metrics[self.metric], self.steps)
        self.pruned = self.ot_trial.should_prune()

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        super().after_iteration(model, epoch, evals_log)
        return self.pruned


def optuna_sequential(
    train: pd.DataFrame, validation: pd.DataFrame, base: ModelParams, p: TuneParams
) -> dict[str, Any]:
    import optuna

    X_train, y_train = train[TUNED_COLUMNS], outcome_index(train["result"])
    X_val, y_val = validation[TUNED_COLUMNS], outcome_index(validation["result"])
    records: list[dict[str, Any]] = []

    def objective(ot_trial: optuna.Trial) -> float:
        config: dict[str, Any] = {}
        for name, r in p.space:
            if name in INTEGER_PARAMS:
                config[name] = ot_trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
            else:
                config[name] = ot_trial.suggest_float(name, r.low, r.high, log=r.log)
        started = time.perf_counter()
        reporter = PruningReporter(ot_trial, p.report_every, p.metric)
        record: dict[str, Any] = {"config": config}
        records.append(record)
        train_booster(
            X_train,
            y_train,
            X_val,
            y_val,
            model_params_for(config, base, p.early_stopping_rounds, p.metric),
            nthread=2,
            callbacks=[reporter],
        )
        # like the Tune trial's last report: the metrics of the last boosting round
        final = reporter.last[p.metric]
        record.update(
            {
                "state": "PRUNED" if reporter.pruned else "COMPLETE",
                p.metric: final,
                "best_reported": min([*reporter.values, final]),
                "boosting_rounds": reporter.last["boosting_rounds"],
                "seconds": time.perf_counter() - started,
            }
        )
        if reporter.pruned:
            raise optuna.TrialPruned()
        return final

    start = time.perf_counter()
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=p.seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.grace_period,
            reduction_factor=p.reduction_factor,
            min_early_stopping_rate=0,
        ),
    )
    study.optimize(objective, n_trials=p.num_samples, timeout=p.time_budget_s, catch=(Exception,))
    states = [t.state.name for t in study.trials]
    scored = [r["best_reported"] for r in records if "best_reported" in r]
    result = {
        "best_value": min(scored) if scored else None,
        "n_trials": len(study.trials),
        "n_finished": states.count("COMPLETE"),
        "n_pruned_or_stopped": states.count("PRUNED"),
        "n_errors": states.count("FAIL"),
        "trial_seconds_sum": sum(r.get("seconds", 0.0) for r in records),
    }
    result["wall_s"] = time.perf_counter() - start
    result["time_budget_hit"] = result["wall_s"] >= p.time_budget_s
    result["xgboost_nthread"] = 2
    result["trials"] = records
    return result


# --------------------------------------------------------------------------------- Ray Tune


def tune_run(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    base: ModelParams,
    p: TuneParams,
    concurrency: int,
) -> dict[str, Any]:
    from ray_jobs.tune import build_tuner, summarise

    storage = Path(tempfile.mkdtemp(prefix=f"tune_overhead_c{concurrency}_"))
    try:
        start = time.perf_counter()
        grid = build_tuner(
            train,
            validation,
            base,
            p,
            storage / f"tune_overhead_c{concurrency}",
            max_concurrent_trials=concurrency,
        ).fit()
        summary = summarise(grid, p)
        wall = time.perf_counter() - start
        return {
            "wall_s": wall,
            "best_value": summary["best_value"],
            "n_trials": summary["n_trials"],
            **trial_counts(grid, p, wall),
        }
    finally:  # only after reading the results: they may be loaded from the storage folder
        shutil.rmtree(storage, ignore_errors=True)


def trial_counts(grid: Any, p: TuneParams, wall: float) -> dict[str, Any]:
    """Finished / stopped / errored trials and what each one reported, in trial order."""
    rungs = set(asha_rungs(p))
    trials, finished, by_asha, by_budget, errors = [], 0, 0, 0, 0
    for r in sorted(grid, key=lambda r: str((r.metrics or {}).get("trial_id", "~"))):
        m = r.metrics or {}
        if r.error is not None:
            state = "ERROR"
            errors += 1
        elif "best_iteration" in m:  # only the trial's own last report carries it
            state = "COMPLETE"
            finished += 1
        elif m.get("training_iteration") in rungs:
            state = "STOPPED_BY_ASHA"
            by_asha += 1
        else:
            state = "STOPPED_OTHER"  # e.g. the time budget ran out mid-trial
            by_budget += 1
        df = r.metrics_dataframe
        best = float(df[p.metric].min()) if df is not None and p.metric in df else None
        trials.append(
            {
                "config": r.config,
                "state": state,
                p.metric: m.get(p.metric),
                "best_reported": best,
                "boosting_rounds": m.get("boosting_rounds"),
                "reports": m.get("training_iteration"),
                "seconds": m.get("time_total_s"),
            }
        )
    return {
        "n_finished": finished,
        "n_pruned_or_stopped": by_asha + by_budget,
        "n_stopped_by_asha": by_asha,
        "n_stopped_other": by_budget,
        "n_errors": errors,
        "time_budget_hit": wall >= p.time_budget_s,
        "xgboost_nthread": 1,
        "trial_seconds_sum": sum(t["seconds"] or 0.0 for t in trials),
        "trials": trials,
    }


# ---------------------------------------------------------------------------------- report


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def markdown(result: dict[str, Any]) -> str:
    metric = result["budget"]["metric"]
    lines = [
        f"| run | wall s | best {metric} | trials | finished | pruned/stopped | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in RUN_LABELS.items():
        r = result["runs"][key]
        best = "n/a" if r["best_value"] is None else f"{r['best_value']:.5f}"
        lines.append(
            f"| {label} | {r['wall_s']:.1f} | {best} | {r['n_trials']} | "
            f"{r['n_finished']} | {r['n_pruned_or_stopped']} | {r['n_errors']} |"
        )
    s, q = result["setup_s"], result["ratios"]

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}x"

    lines += [
        "",
        (
            f"Tune overhead (wall, Tune c=1 / Optuna sequential): "
            f"{fmt(q['tune_c1_over_optuna_sequential'])}"
        ),
        f"Tune scaling (wall, c=1 / c=2): {fmt(q['tune_c1_over_tune_c2'])}",
        (
            f"Separately: load splits {s['load_splits']:.2f} s, imports {s['imports']:.2f} s, "
            f"ray.init {s['ray_init']:.2f} s, ray.shutdown {s['ray_shutdown']:.2f} s"
        ),
    ]
    if any(r["time_budget_hit"] for r in result["runs"].values()):
        lines.append(
            "WARNING: a run hit time_budget_s; its wall time is capped and the ratios "
            "are not comparable"
        )
    return "\n".join(lines)


def run(cfg: Config, quick: bool, out: Path, time_budget_s: float | None) -> dict[str, Any]:
    p = budget_params(cfg.params.tune, quick, time_budget_s)
    validate_budget(p)
    base = cfg.params.forecasters.ratings_only
    (train, validation), load_s = timed(lambda: load_splits(cfg))

    def imports() -> None:
        import optuna  # noqa: F401
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401

        import ray_jobs.tune  # noqa: F401  (imports mlflow via the registry)

    _, import_s = timed(imports)
    result: dict[str, Any] = {
        "benchmark": "tune_overhead",
        "quick": quick,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "data": {
            "train_rows": len(train),
            "validation_rows": len(validation),
            "splits": str(cfg.runtime.paths.splits),
        },
        "budget": p.model_dump(mode="json")
        | {"asha_max_t": asha_max_t(p), "asha_rungs": asha_rungs(p)},
        "runs": {},
    }

    print(f"== {RUN_LABELS['optuna_sequential']}", flush=True)
    result["runs"]["optuna_sequential"] = optuna_sequential(train, validation, base, p)

    import ray

    from ray_jobs.runtime import LOOPBACK_ENV

    for key, value in LOOPBACK_ENV.items():  # loopback only, as ray_jobs.runtime.ray_session
        os.environ.setdefault(key, value)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # address="local": always a fresh local instance, never a RAY_ADDRESS cluster
    _, init_s = timed(lambda: ray.init(address="local", num_cpus=2, include_dashboard=False))
    try:
        for c in (1, 2):
            print(f"== {RUN_LABELS[f'tune_c{c}']}", flush=True)
            result["runs"][f"tune_c{c}"] = tune_run(train, validation, base, p, c)
    finally:
        _, shutdown_s = timed(ray.shutdown)

    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    result["setup_s"] = {
        "load_splits": load_s,
        "imports": import_s,
        "ray_init": init_s,
        "ray_shutdown": shutdown_s,
    }
    runs = result["runs"]
    result["ratios"] = {
        "tune_c1_over_optuna_sequential": ratio(
            runs["tune_c1"]["wall_s"], runs["optuna_sequential"]["wall_s"]
        ),
        "tune_c1_over_tune_c2": ratio(runs["tune_c1"]["wall_s"], runs["tune_c2"]["wall_s"]),
    }
    seq = [t["config"] for t in runs["optuna_sequential"]["trials"]]
    for c in (1, 2):
        tune_cfgs = [t["config"] for t in runs[f"tune_c{c}"]["trials"]]
        runs[f"tune_c{c}"]["configs_same_as_optuna_sequential"] = sum(
            same_config(a, b) for a, b in zip(tune_cfgs, seq, strict=False)
        )
    result["notes"] = [
        (
            "Tune runs: ray_jobs.tune pieces (tune_space, trial, OptunaSearch(seed) + ASHAScheduler) "
            "without the MLflow callback, with a temporary storage_path deleted afterwards: nothing "
            "is logged to MLflow or the model registry, and ray_results/ is untouched."
        ),
        (
            "Both Tune runs share one ray.init(num_cpus=2, include_dashboard=False) on 127.0.0.1; "
            "c=1 runs first, right after ray.init. Optuna sequential runs before ray.init."
        ),
        (
            "Tune trials boost with nthread=1 (ray_jobs.tune.trial, 1 CPU per trial); the sequential "
            "study uses nthread=2, so Tune c=1 leaves one core idle by design."
        ),
        (
            "wall_s: from just before building the search to its summary; splits loading, imports, "
            "ray.init and ray.shutdown are in setup_s."
        ),
        (
            "best_value: the lowest metric reported by any trial at any report (as "
            "ray_jobs.tune.summarise, scope='all'). Optuna is told the last round's metric, as "
            "OptunaSearch is told a Tune trial's last report; Tune tells OptunaSearch an "
            "ASHA-stopped trial as COMPLETE, the sequential study marks it PRUNED, so the samplers "
            "may diverge after the TPE start-up trials."
        ),
        (
            "The Optuna pruner is SuccessiveHalvingPruner(min_resource=grace_period, "
            "reduction_factor, min_early_stopping_rate=0) stepping on the same report count as "
            "Tune's training_iteration; Optuna's timeout=time_budget_s only stops new trials."
        ),
    ]
    if quick:
        result["notes"].append(
            f"--quick: num_samples={QUICK_SAMPLES}, n_estimators range "
            f"[{int(p.space.n_estimators.low)}, {QUICK_MAX_ROUNDS}]; a smoke test, not a result."
        )
    write_json(result, out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: num_samples={QUICK_SAMPLES}, at most {QUICK_MAX_ROUNDS} boosting rounds",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/tune_overhead.json"))
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conf", default="conf/runtime.yaml")
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=None,
        help="override tune.time_budget_s for all three runs",
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.params, args.conf)
    result = run(cfg, args.quick, args.out, args.time_budget_s)
    print("\n" + markdown(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
