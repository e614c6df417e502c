"""The whole offline pipeline through real DVC, Ray and MLflow on a few seasons of data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def _small_params(path: Path) -> None:
    params = yaml.safe_load(path.read_text())
    params["data"].update(leagues=["E0", "SP1"], first_season="2016-2017",
                          last_season="2019-2020")
    params["split"] = {"validation_seasons": ["2018-2019"], "test_seasons": ["2019-2020"]}
    params["model"].update(n_estimators=400, early_stopping_rounds=40, learning_rate=0.05)
    params["promotion"].update(max_logloss=1.1, max_ece=0.1, max_rps=0.25)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, football_data_dir: Path,
            ray_address: str) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the project with small params, wired to the shared Ray instance."""
    work = tmp_path_factory.mktemp("project")
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    _small_params(work / "params.yaml")
    env = dict(os.environ, DATA_DIR=str(football_data_dir), RAY_ADDRESS=ray_address,
               MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db", DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "test"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "fixture"]):
        _run(cmd, work, env)
    return work, env


@pytest.fixture(scope="module")
def reproduced(project: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    work, env = project
    _run(["dvc", "repro"], work, env)
    return work, env


def test_repro_trains_evaluates_and_registers_a_champion(reproduced) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow import MlflowClient

    work, env = reproduced
    metrics = json.loads((work / "reports/metrics.json").read_text())
    test = metrics["test"]
    assert set(test) == {"model", "pinnacle_closing", "pre_closing_market", "elo_only",
                         "base_rates"}
    assert test["model"]["rps"] < test["base_rates"]["rps"]
    assert metrics["n_common"] > 0.9 * metrics["n_test"]
    for plot in ("calibration", "feature_importance", "rps_by_league", "rps_by_favourite"):
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


def test_second_repro_does_nothing(reproduced) -> None:  # type: ignore[no-untyped-def]
    work, env = reproduced
    out = _run(["dvc", "repro"], work, env).stdout
    assert "up to date" in out.lower()
    assert "Running stage" not in out


def test_exp_run_varies_a_feature_param(reproduced) -> None:  # type: ignore[no-untyped-def]
    work, env = reproduced
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline run"], work, env)
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
        reproduced, tmp_path: Path) -> None:
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
    result = subprocess.run([sys.executable, "-m", "ray_jobs.ingest"], cwd=work,
                            env=dict(env, DATA_DIR=str(broken)), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode != 0
    assert "gate 'raw' failed" in result.stderr and "home_goals" in result.stderr
    assert _sha(raw) == before
    report = json.loads((work / "reports/validation_raw.json").read_text())
    assert report["success"] is False
    assert (work / "reports/validation_raw.md").exists()
