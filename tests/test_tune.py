"""Ray Tune search: bad settings refused up front, trials nested in MLflow, retries and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from soccerpredict.config import (
    FeatureParams,
    ForecasterParams,
    ModelParams,
    TuneParams,
    load_config,
)
from soccerpredict.features.build import feature_contract
from soccerpredict.io import write_json
from soccerpredict.tuning import (
    TUNED_COLUMNS,
    RoundReporter,
    StaleSearch,
    choose_tier_params,
    model_params_for,
    tier_params,
    tier_rows,
    validate_budget,
)
from tests.projects import FAST_TIER

ROOT = Path(__file__).resolve().parent.parent
SPACE = yaml.safe_load((ROOT / "params.yaml").read_text())["tune"]["space"]


def tune_params(**changes: object) -> TuneParams:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())["tune"]
    return TuneParams.model_validate(base | changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"space": SPACE | {"learning_rate": {"low": 0.3, "high": 0.1}}}, "must be below"),
        ({"space": SPACE | {"reg_lambda": {"low": 0.0, "high": 1.0, "log": True}}}, "positive"),
        ({"space": SPACE | {"subsample": {"low": 0.5, "high": 1.5}}}, "subsample"),
        ({"metric": "val_accuracy"}, "val_rps"),
        ({"num_samples": 0}, "greater than or equal to 1"),
        ({"time_budget_s": 0}, "greater than 0"),
    ],
)
def test_bad_search_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        tune_params(**changes)


def test_budget_too_small_for_the_grace_period() -> None:
    params = tune_params(grace_period=200, report_every=10)
    with pytest.raises(ValueError, match="grace_period"):
        validate_budget(params)


def test_trial_values_become_model_params() -> None:
    base = ModelParams()
    params = model_params_for({"max_depth": 3.6, "learning_rate": 0.05, "unknown": 1}, base, 30)
    assert params.max_depth == 4 and params.learning_rate == 0.05
    assert params.early_stopping_rounds == 30 and params.seed == base.seed


def test_round_reporter_reports_every_n_rounds() -> None:
    seen: list[dict[str, float]] = []
    reporter = RoundReporter(seen.append, every=3)
    log = {"val": {"rps": [], "mlogloss": []}}
    for epoch in range(7):
        log["val"]["rps"].append(0.2 - epoch / 1000)
        log["val"]["mlogloss"].append(1.0)
        reporter.after_iteration(None, epoch, log)
    assert [r["boosting_rounds"] for r in seen] == [3, 6]
    assert reporter.last["boosting_rounds"] == 7


HAND_SET = FAST_TIER


@pytest.fixture(scope="module")
def tier_tables(synthetic_data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from soccerpredict.data.readers import read_football_data_csv
    from soccerpredict.features.build import build_features

    raw = pd.concat(
        [
            read_football_data_csv((synthetic_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in ("2016-2017", "2017-2018", "2018-2019")
        ],
        ignore_index=True,
    )
    table = build_features(raw, FeatureParams())
    return table[table["season"] < "2018-2019"], table[table["season"] == "2018-2019"]


def test_the_search_tunes_the_tier_on_its_own_inputs(
    tier_tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    rows = tier_rows(tier_tables[0])
    assert list(rows.columns) == [*TUNED_COLUMNS, "result"]
    assert not any(c.startswith(("market_", "mkt_", "ps_", "avg_")) for c in rows.columns)
    assert rows["result"].notna().all()


def test_tuned_params_are_kept_only_when_better_on_validation(
    tier_tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, validation = (tier_rows(t) for t in tier_tables)
    # a booster that cannot learn (one round, tiny steps) against the hand-set one, both ways
    weak = HAND_SET.model_copy(update={"n_estimators": 1, "learning_rate": 0.001})
    worse = choose_tier_params(train, validation, HAND_SET, weak, "val_rps", nthread=1)
    assert worse["chosen"] == "hand_set" and worse["params"] == HAND_SET.model_dump(mode="json")
    assert worse["tuned"]["validation"]["rps"] > worse["hand_set"]["validation"]["rps"]
    better = choose_tier_params(train, validation, weak, HAND_SET, "val_rps", nthread=1)
    assert better["chosen"] == "tuned" and better["params"] == HAND_SET.model_dump(mode="json")
    assert better["tier"] == "ratings_only"


def test_train_reads_the_search_choice_for_the_tier(tmp_path: Path) -> None:
    forecasters = ForecasterParams(ratings_only=HAND_SET, with_market=HAND_SET)
    record = tmp_path / "best_params.json"
    assert tier_params(forecasters, record) == forecasters  # no search yet: hand-set
    tuned = HAND_SET.model_copy(update={"max_depth": 5, "early_stopping_metric": "rps"})
    write_json(
        {
            "tier": "ratings_only",
            "chosen": "tuned",
            "params": tuned.model_dump(mode="json"),
            "hand_set": {"params": HAND_SET.model_dump(mode="json")},
        },
        record,
        digits=None,
    )
    used = tier_params(forecasters, record)
    assert used.ratings_only == tuned and used.with_market == HAND_SET
    moved = forecasters.model_copy(
        update={"ratings_only": HAND_SET.model_copy(update={"max_depth": 4})}
    )
    with pytest.raises(StaleSearch, match="dvc repro tune"):
        tier_params(moved, record)  # searched around other hand-set params
    write_json({"model": tuned.model_dump(mode="json")}, record)  # the old, untiered record
    with pytest.raises(StaleSearch, match="no tier"):
        tier_params(forecasters, record)


@pytest.fixture(scope="module")
def tune_project(tmp_path_factory: pytest.TempPathFactory, football_data_dir: Path) -> Path:
    """Splits of a few seasons and a small search budget in a folder of their own."""
    from soccerpredict.data.readers import read_football_data_csv
    from soccerpredict.features.build import build_features
    from soccerpredict.split import temporal_split

    work = tmp_path_factory.mktemp("tune")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    seasons = ["2016-2017", "2017-2018", "2018-2019", "2019-2020"]
    params["split"] = {"validation_seasons": ["2018-2019"], "test_seasons": ["2019-2020"]}
    params["tune"].update(
        num_samples=4,
        max_concurrent_trials=2,
        grace_period=2,
        report_every=10,
        early_stopping_rounds=20,
        time_budget_s=300,
    )
    params["tune"]["space"]["n_estimators"] = {"low": 60, "high": 120}
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    runtime = yaml.safe_load((ROOT / "conf/runtime.yaml").read_text())
    runtime["paths"] = {k: str(work / v) for k, v in runtime["paths"].items()}
    runtime["mlflow"].update(
        tracking_uri=f"sqlite:///{work}/mlflow.db", artifact_root=str(work / "mlartifacts")
    )
    (work / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    frame = pd.concat(
        [
            read_football_data_csv((football_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in seasons
        ]
    )
    cfg = load_config(work / "params.yaml", work / "runtime.yaml", env={})
    parts = temporal_split(build_features(frame, cfg.params.features), cfg.params.split)
    Path(cfg.runtime.paths.splits).mkdir(parents=True)
    for name in ("train", "validation"):
        parts[name].to_parquet(Path(cfg.runtime.paths.splits) / f"{name}.parquet")
    contract = Path(cfg.runtime.paths.features).with_name("feature_contract.json")
    contract.write_text(json.dumps(feature_contract()))
    return work


@pytest.mark.slow
def test_a_table_that_breaks_the_contract_stops_before_any_trial(
    tune_project: Path, tmp_path: Path
) -> None:
    runtime = yaml.safe_load((tune_project / "runtime.yaml").read_text())
    for key in ("splits", "reports", "tune_storage", "best_params"):
        runtime["paths"][key] = str(tmp_path / Path(runtime["paths"][key]).name)
    runtime["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    splits = Path(runtime["paths"]["splits"])
    splits.mkdir()
    source = tune_project / "data/processed/splits"
    pd.read_parquet(source / "train.parquet").drop(columns="elo_diff").to_parquet(
        splits / "train.parquet"
    )
    (splits / "validation.parquet").write_bytes((source / "validation.parquet").read_bytes())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ray_jobs.tune",
            "--params",
            str(tune_project / "params.yaml"),
            "--conf",
            str(tmp_path / "runtime.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, MLFLOW_TRACKING_URI=runtime["mlflow"]["tracking_uri"]),
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "elo_diff" in proc.stderr and "validation_tune_train.json" in proc.stderr
    report = json.loads((tmp_path / "reports/validation_tune_train.json").read_text())
    assert report["success"] is False
    assert not Path(runtime["paths"]["tune_storage"]).exists()  # no search was started
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "best_params.json").exists()


def _driver(work: Path, ray_address: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ, RAY_ADDRESS=ray_address, MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray_jobs.tune",
            "--params",
            str(work / "params.yaml"),
            "--conf",
            str(work / "runtime.yaml"),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.ray
@pytest.mark.slow
def test_search_nests_every_trial_under_one_mlflow_run(
    tune_project: Path, ray_address: str
) -> None:
    import mlflow
    from mlflow import MlflowClient

    proc = _driver(tune_project, ray_address)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "Trial status" in out and "Current best trial" in out  # Tune's reporter
    best = json.loads((tune_project / "reports/tune/best_params.json").read_text())
    summary = json.loads((tune_project / "reports/tune/summary.json").read_text())
    assert summary["n_trials"] == 4 and summary["n_errors"] == 0
    assert best["tier"] == "ratings_only" and best["chosen"] in ("tuned", "hand_set")
    assert 0.15 < best["search_best_value"] < 0.25
    assert 60 <= best["tuned"]["params"]["n_estimators"] <= 120
    scores = {k: best[k]["validation"]["rps"] for k in ("tuned", "hand_set")}
    assert best["chosen"] == min(scores, key=scores.get)  # type: ignore[arg-type]
    assert best["params"] == best[best["chosen"]]["params"]
    mlflow.set_tracking_uri(f"sqlite:///{tune_project}/mlflow.db")
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("soccerpredict").experiment_id])
    parents = [r for r in runs if r.info.run_name.startswith("tune-")]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 4
    history = client.get_metric_history(children[0].info.run_id, "val_rps")
    assert len(history) >= 2  # one point per report, not just the final value


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_trial_worker_is_retried(tune_project: Path, ray_address: str) -> None:
    proc = _driver(tune_project, ray_address)
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:
        workers = _trial_workers()
        if workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # the worker process dies mid-trial
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=600)
    assert killed is not None, "no trial worker appeared"
    assert proc.returncode == 0, out[-4000:]
    summary = json.loads((tune_project / "reports/tune/summary.json").read_text())
    assert summary["retried_failures"] >= 1 and summary["n_errors"] == 0
    assert summary["n_trials"] == 4


@pytest.mark.ray
@pytest.mark.slow
def test_interrupted_search_resumes_from_storage(tune_project: Path, ray_address: str) -> None:
    params = yaml.safe_load((tune_project / "params.yaml").read_text())
    # long enough to interrupt: with reused actors a trial of this fixture takes under a second
    params["tune"].update(num_samples=30, max_concurrent_trials=1, seed=7)
    (tune_project / "params.yaml").write_text(yaml.safe_dump(params))
    storage = tune_project / "ray_results"
    proc = _driver(tune_project, ray_address)
    deadline = time.time() + 300
    while time.time() < deadline and _finished_trials(storage) < 2 and proc.poll() is None:
        time.sleep(0.5)
    if _finished_trials(storage) < 2:
        proc.kill()
        pytest.fail(
            f"no two trials finished while the search ran:\n{proc.communicate()[0][-4000:]}"
        )
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-4000:]
    assert "resume" in out.lower()
    done_before = _finished_trials(storage)
    resumed = _driver(tune_project, ray_address)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-4000:]
    assert "resuming the interrupted search" in out
    summary = json.loads((tune_project / "reports/tune/summary.json").read_text())
    assert summary["n_trials"] == 30
    started_again = out.count("started with configuration")
    assert 1 <= started_again <= 30 - done_before  # the rest ran; finished ones did not


def _trial_workers() -> list[int]:
    """Ray names a worker process after the actor it runs: `ray::ImplicitFunc.train`."""
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any("ImplicitFunc" in part for part in (p.info["cmdline"] or []))
    ]


def _finished_trials(storage: Path) -> int:
    count = 0
    for result in storage.glob("search-*/*/result.json"):
        lines = result.read_text().strip().splitlines()
        count += bool(lines) and json.loads(lines[-1]).get("done", False)
    return count
