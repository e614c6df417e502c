"""The whole offline pipeline through real DVC, Ray and MLflow on a few seasons of data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ray_jobs.params_reads import ENV
from tests.projects import make_project
from tests.projects import run as _run
from tests.test_dvc_deps import check_params_reads

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, football_data_dir: Path, ray_address: str
) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the project with small params, wired to the shared Ray instance."""
    work = tmp_path_factory.mktemp("project")
    return work, make_project(work, football_data_dir, ray_address)


@pytest.fixture(scope="module")
def reproduced(project: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """`dvc repro`, each stage recording the params keys it reads (ray_jobs/params_reads.py)."""
    work, env = project
    reads = work.parent / f"{work.name}-params-reads"
    reads.mkdir()
    _run(["dvc", "repro"], work, env | {ENV: str(reads)})
    return work, env


def test_each_stage_lists_the_params_it_reads(reproduced) -> None:  # type: ignore[no-untyped-def]
    work, _ = reproduced
    check_params_reads(work.parent / f"{work.name}-params-reads")


def test_repro_trains_evaluates_and_registers_a_champion(reproduced) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow import MlflowClient

    work, env = reproduced
    metrics = json.loads((work / "reports/metrics.json").read_text())
    test = metrics["test"]
    assert set(test) == {
        "model",
        "with_market",
        "with_market_1x2",
        "ratings_only",
        "market_baseline",
        "pinnacle_closing",
        "pre_closing_market",
        "elo_only",
        "base_rates",
        "uniform",
    }
    assert test["model"]["rps"] < test["base_rates"]["rps"] < test["uniform"]["rps"]
    assert test["ratings_only"]["rps"] < test["base_rates"]["rps"]
    backtest = json.loads((work / "reports/backtest.json").read_text())
    assert backtest["folds"] == ["2018-2019", "2019-2020"]  # backtest.max_folds: 2
    assert metrics["n_common"] > 0.9 * metrics["n_test"]
    for plot in (
        "calibration",
        "feature_importance",
        "rps_by_league",
        "rps_by_favourite",
        "backtest",
    ):
        assert (work / f"reports/plots/{plot}.png").stat().st_size > 1000
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    champion = MlflowClient().get_model_version_by_alias("soccer-match-outcome", "champion")
    assert champion.tags["promotion_decision"] == "promoted"
    model = mlflow.pyfunc.load_model("models:/soccer-match-outcome@champion")
    import pandas as pd

    test_rows = pd.read_parquet(work / "data/processed/splits/test.parquet").head(20)
    contract = json.loads((work / "data/processed/feature_contract.json").read_text())
    probs = model.predict(test_rows[contract["columns"]])
    assert probs.to_numpy().sum(axis=1) == pytest.approx(1.0)
    # the signature's optional `league` routes rows to their tier (no extra leagues here: the same)
    routed = model.predict(test_rows[[*contract["columns"], "league"]])
    assert routed.to_numpy() == pytest.approx(probs.to_numpy())


def test_the_served_predictor_is_refit_on_the_latest_seasons(reproduced) -> None:  # type: ignore[no-untyped-def]
    """production.refit: the version serves the tiers refit as the backtest's next fold (every
    played season but the last backtest.validation_seasons, validated on those); its test
    metrics, and promotion's re-scoring, are the evaluated predictor's (trained on the split)."""
    import pandas as pd
    from mlflow import MlflowClient

    from soccerpredict import registry
    from soccerpredict.models.predictor import Predictor

    work, env = reproduced
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["production"]["refit"] is True
    seasons = sorted(pd.read_parquet(work / "data/processed/features.parquet")["season"].unique())
    held = params["backtest"]["validation_seasons"]
    summary = json.loads((work / "models/train_summary.json").read_text())["production"]
    assert summary["train_seasons"] == seasons[:-held]
    assert summary["validation_seasons"] == seasons[-held:]
    # the split's model stopped before its validation seasons; the served one trains on them
    assert set(params["split"]["validation_seasons"]) <= set(summary["train_seasons"])
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    name = "soccer-match-outcome"
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["train_seasons"] == ",".join(summary["train_seasons"])
    assert champion.tags["validation_seasons"] == ",".join(summary["validation_seasons"])
    version = str(champion.version)
    served = registry.load_predictor(client, name, version)
    evaluated = registry.load_predictor(client, name, version, evaluated=True)
    test_rows = pd.read_parquet(work / "data/processed/splits/test.parquet")
    assert served.predict_proba(test_rows) == pytest.approx(
        Predictor.load(work / "models/production").predict_proba(test_rows)
    )
    assert evaluated.predict_proba(test_rows) == pytest.approx(
        Predictor.load(work / "models/evaluated").predict_proba(test_rows)
    )
    assert abs(served.predict_proba(test_rows) - evaluated.predict_proba(test_rows)).max() > 1e-3
    assert list(served.forecasters) == list(evaluated.forecasters)  # no request loses its tier
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    contract = json.loads((work / "data/processed/feature_contract.json").read_text())
    assert pyfunc.predict(test_rows[contract["columns"]]).to_numpy() == pytest.approx(
        served.predict_proba(test_rows[contract["columns"]])
    )


def test_second_repro_reruns_only_the_checks_and_leaves_git_clean(  # type: ignore[no-untyped-def]
    reproduced,
) -> None:
    work, env = reproduced
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "first run"], work, env)
    versions, champion = _versions(env), _champion(env)
    out = _run(["dvc", "repro"], work, env).stdout
    # always_changed: `resolve` reads the date, register, promote and drift the MLflow
    # registry, `quality` what Redis logged: all outside DVC's view, all idempotent
    ran = re.findall(r"Running stage '(\w+)'", out)
    skipped = re.findall(r"Stage '(\w+)' didn't change, skipping", out)
    assert ran == ["resolve", "register", "promote", "drift", "quality"], out
    assert {
        "ingest",
        "features",
        "tune",
        "train",
        "evaluate",
        "backtest",
        "batch_predict",
    } <= set(skipped)
    assert _versions(env) == versions and _champion(env) == champion  # nothing registered twice
    status = _run(["git", "status", "--porcelain"], work, env).stdout
    assert status == "", status  # run records live outside git; the calendar did not move


def test_exp_run_varies_a_feature_param(reproduced) -> None:  # type: ignore[no-untyped-def]
    work, env = reproduced
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline run", "--allow-empty"], work, env)
    out = _run(["dvc", "exp", "run", "-S", "features.form_window=10"], work, env).stdout
    assert "Running stage 'features'" in out and "Running stage 'ingest'" not in out
    shown = _run(["dvc", "exp", "show", "--json"], work, env).stdout
    assert "form_window" in shown and "10" in shown


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reingest_is_byte_identical(reproduced) -> None:  # type: ignore[no-untyped-def]
    work, env = reproduced
    raw = work / "data/raw/matches.parquet"
    before = _sha(raw)
    _run([sys.executable, "-m", "ray_jobs.ingest"], work, env)
    assert _sha(raw) == before


def test_broken_input_fails_the_gate_and_keeps_stored_data(  # type: ignore[no-untyped-def]
    reproduced, tmp_path: Path
) -> None:
    work, env = reproduced
    broken = tmp_path / "football-data"
    shutil.copytree(env["DATA_DIR"], broken, ignore=shutil.ignore_patterns("extra_leagues", "raw"))
    target = broken / "E0" / "2018-2019.csv"
    lines = target.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("FTHG")] = "-2"  # goals negative
    target.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    raw = work / "data/raw/matches.parquet"
    before = _sha(raw)
    result = subprocess.run(
        [sys.executable, "-m", "ray_jobs.ingest"],
        cwd=work,
        env=dict(env, DATA_DIR=str(broken)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "gate 'raw' failed" in result.stderr and "home_goals" in result.stderr
    assert _sha(raw) == before
    report = json.loads((work / "reports/validation_raw.json").read_text())
    assert report["success"] is False
    assert (work / "reports/validation_raw.md").exists()


def test_a_failed_features_run_keeps_what_serve_reads(  # type: ignore[no-untyped-def]
    reproduced,
) -> None:
    """DVC deletes a stage's outputs before running it, unless they persist: Serve's team state
    and batch predictions must survive a features run that fails half-way."""
    work, env = reproduced
    served = [
        work / "data/serving/team_state.json",
        work / "data/serving/upcoming_predictions.parquet",
    ]
    before = [_sha(p) for p in served]
    interim = work / "data/interim/matches.parquet"
    kept = interim.read_bytes()
    try:
        interim.write_bytes(b"not parquet")  # the stage fails reading its input
        result = subprocess.run(
            ["dvc", "repro", "-s", "-f", "features"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode != 0
        assert [_sha(p) for p in served] == before
    finally:
        interim.write_bytes(kept)


def _versions(env: dict[str, str]) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    return len(client.search_model_versions("name = 'soccer-match-outcome'"))


def _champion(env: dict[str, str]) -> str:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return str(
        MlflowClient().get_model_version_by_alias("soccer-match-outcome", "champion").version
    )


def test_promotion_refuses_a_failing_challenger_and_rollback_restores(  # type: ignore[no-untyped-def]
    reproduced,
) -> None:
    work, env = reproduced
    job = [sys.executable, "-m"]
    before = _champion(env)
    # other trained files (as a retrain would give): registered as a new version, not re-used
    (work / "models/production/retrained.json").write_text('{"retrain": 1}\n')  # data only
    _run([*job, "ray_jobs.register"], work, env)
    strict = work / "strict.yaml"
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["promotion"]["max_rps"] = 0.01  # no model passes this gate
    strict.write_text(yaml.safe_dump(params))
    _run([*job, "ray_jobs.promote", "--params", str(strict)], work, env)
    history = json.loads((work / "var/runs/promotion_history.json").read_text())
    assert history[-1]["promoted"] is False and "rps" in history[-1]["reasons"][0]
    decision = json.loads((work / "reports/promotion.json").read_text())  # no times, no versions
    assert decision == {
        "promoted": False,
        "reasons": history[-1]["reasons"],
        "figures": {k: v for k, v in decision["figures"].items()},
    }
    assert set(decision["figures"]) == {"rps", "log_loss", "ece", "tiers"}
    assert history[-1]["figures"]["champion_rps"] is not None  # judged on the same matches
    assert _champion(env) == before
    params["promotion"].update(max_rps=0.25, rps_tolerance=1.0)
    lenient = work / "lenient.yaml"
    lenient.write_text(yaml.safe_dump(params))
    _run([*job, "ray_jobs.promote", "--params", str(lenient)], work, env)
    promoted = _champion(env)
    assert promoted != before
    _run([*job, "ray_jobs.rollback"], work, env)
    assert _champion(env) == before
    history = json.loads((work / "var/runs/promotion_history.json").read_text())
    assert history[-1] == history[-1] | {
        "action": "rollback",
        "version": before,
        "from_version": promoted,
    }
