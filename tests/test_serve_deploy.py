"""The head's deploy loop (scripts/serve_deploy.sh): it logs to stdout, goes on after a failed
round, and tells "no champion yet" from a registry that does not answer."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serve_app.local import free_port
from soccerpredict.ops.champion import champion_status
from tests.kuberay_schema import REPO


@pytest.mark.slow
def test_the_loop_logs_each_failed_round_to_stdout_and_goes_on() -> None:
    env = {
        **os.environ,
        "RAY_DASHBOARD_ADDRESS": f"http://127.0.0.1:{free_port()}",
        "SERVE_DEPLOY_MAX_ROUNDS": "2",
    }
    done = subprocess.run(
        ["bash", "scripts/serve_deploy.sh"],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("serve_deploy: ")]
    assert done.returncode == 0
    assert len(lines) == 2 and all("does not answer yet" in line for line in lines), done.stdout


def test_no_champion_yet_differs_from_a_registry_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code, message = champion_status(uri, "m")
    assert code == 3 and "no champion of m" in message
    client = MlflowClient(uri)
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path / "model"))
    assert champion_status(uri, "m")[0] == 3  # a version, no alias
    client.set_registered_model_alias("m", "champion", "1")
    assert champion_status(uri, "m") == (0, "champion of m: version 1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    code, message = champion_status(f"http://127.0.0.1:{free_port()}", "m")
    assert code == 1 and "registry" in message and "Connection" in message, message
