"""A copy of the project in a temporary git + DVC repository, with small params, for tests that
run the real pipeline (`dvc repro`) against the shared Ray instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from soccerpredict.config import ModelParams

# a tier's booster small enough for the unit tests' synthetic tables
FAST_TIER = ModelParams(
    learning_rate=0.1,
    n_estimators=200,
    early_stopping_rounds=20,
    min_child_weight=5.0,
    calibration_methods=["none", "temperature"],
)

ROOT = Path(__file__).resolve().parent.parent


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def small_params(params: dict[str, Any]) -> dict[str, Any]:
    """Two leagues, four seasons, a tiny search: the whole pipeline in a minute or two."""
    params["data"].update(leagues=["E0", "SP1"], first_season="2016-2017", last_season="2019-2020")
    # no extra leagues: generated data has none (and their empty tables are a path worth running)
    params["data"]["extra_leagues"] = []
    params["split"] = {"validation_seasons": ["2018-2019"], "test_seasons": ["2019-2020"]}
    for tier in ("ratings_only", "with_market"):  # `forecasters` also holds the market margin
        params["forecasters"][tier].update(
            n_estimators=300, early_stopping_rounds=30, learning_rate=0.1
        )
    params["backtest"].update(first_season="2016-2017", max_folds=2, bootstrap=200)
    params["promotion"].update(max_logloss=1.1, max_ece=0.1, max_rps=0.25)
    params["tune"].update(
        num_samples=3, max_concurrent_trials=2, grace_period=2, early_stopping_rounds=20
    )
    params["tune"]["space"]["n_estimators"] = {"low": 60, "high": 150}
    params["drift"]["current_seasons"] = ["2019-2020"]  # `as_of` is after these data end
    return params


def make_project(
    work: Path,
    data_dir: Path,
    ray_address: str,
    edit_params: Callable[[dict[str, Any]], dict[str, Any]] = small_params,
    edit_runtime: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Copy the tracked files into `work`, apply the edits, commit; return the stage env."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    _edit_yaml(work / "params.yaml", edit_params)
    if edit_runtime is not None:
        _edit_yaml(work / "conf/runtime.yaml", edit_runtime)
    env = dict(
        os.environ,
        DATA_DIR=str(data_dir),
        RAY_ADDRESS=ray_address,
        MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db",
        DVC_NO_ANALYTICS="1",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "t@example.com"],
        ["git", "config", "user.name", "test"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "fixture"],
    ):
        run(cmd, work, env)
    return env


def _edit_yaml(path: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump(edit(yaml.safe_load(path.read_text())), sort_keys=False))
