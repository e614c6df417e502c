"""Least privilege in MLflow, for real: the tracking server as the cluster runs it (basic-auth
app, NO_PERMISSIONS by default, artifacts proxied to S3: tests/s3.py) on 127.0.0.1, set up by
`python -m soccerpredict.ops.mlflow_users` as the admin, run twice (it must be idempotent).

* the pipeline user logs a run and a model version (ray_jobs.register's pyfunc with the
  predictor's data files), tags it and moves `champion`;
* the Serve user loads the champion as Serve does (data files checked against their sha256), reads
  its run's metrics and a report, and is refused (403) registering a version, moving the alias,
  tagging, writing a run or an artifact;
* without credentials: 401.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.kuberay_schema import REPO
from tests.s3 import ADMIN, mlflow_auth_server, s3_emulator

pytestmark = pytest.mark.slow
EXPERIMENT, MODEL = "soccerpredict", "soccer-match-outcome"  # conf/runtime.yaml
PIPELINE = ("soccerpredict-pipeline", "pipeline-password-1")
SERVE = ("soccerpredict-serve", "serve-password-123")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_emulator() as s3, mlflow_auth_server(s3, tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def bootstrap(url: str, serve_password: str = SERVE[1]) -> str:
    """The Job's command, with the Job's environment (kuberay/base/mlflow-users.yaml)."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_ARTIFACT_ROOT": "mlflow-artifacts:/",
        "MLFLOW_TRACKING_USERNAME": ADMIN[0],
        "MLFLOW_TRACKING_PASSWORD": ADMIN[1],
        "MLFLOW_PIPELINE_USERNAME": PIPELINE[0],
        "MLFLOW_PIPELINE_PASSWORD": PIPELINE[1],
        "MLFLOW_SERVE_USERNAME": SERVE[0],
        "MLFLOW_SERVE_PASSWORD": serve_password,
    }
    done = subprocess.run(
        [sys.executable, "-m", "soccerpredict.ops.mlflow_users"],
        check=False,  # the output is asserted below
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def act_as(monkeypatch: pytest.MonkeyPatch, user: tuple[str, str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])


def refused(call: Any) -> None:
    """403: from the REST API as MLflow's PERMISSION_DENIED, from the artifact proxy as HTTP."""
    from mlflow.exceptions import MlflowException
    from requests import HTTPError

    with pytest.raises((MlflowException, HTTPError)) as caught:
        call()
    if isinstance(caught.value, MlflowException):
        assert caught.value.error_code == "PERMISSION_DENIED", caught.value
    else:
        assert caught.value.response.status_code == 403, caught.value


@pytest.fixture(scope="module")
def predictor() -> Any:
    from soccerpredict.config import ModelParams
    from soccerpredict.features.build import FEATURE_COLUMNS, feature_contract
    from soccerpredict.models import Calibrator, train_booster
    from soccerpredict.models.predictor import RATINGS_ONLY, Forecaster, Predictor

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    y = rng.integers(0, 3, 300)
    booster = train_booster(x[:200], y[:200], x[200:], y[200:], ModelParams(n_estimators=5))
    tier = Forecaster(
        RATINGS_ONLY, booster, Calibrator("temperature", {"temperature": 2.0}), FEATURE_COLUMNS
    )
    return Predictor({RATINGS_ONLY: tier}, feature_contract())


def frame() -> pd.DataFrame:
    from soccerpredict.features.build import FEATURE_COLUMNS

    rng = np.random.default_rng(1)
    return pd.DataFrame(rng.normal(size=(5, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)


def test_the_bootstrap_is_idempotent_and_sets_passwords_again(server: str) -> None:
    first = bootstrap(server, serve_password="an-older-serve-password")
    assert f"mlflow-users: {SERVE[0]}: created" in first
    assert f"{PIPELINE[0]} EDIT registered_model {MODEL}: granted" in first
    second = bootstrap(server)  # a rotated Secret: the password is set again
    assert f"mlflow-users: {SERVE[0]}: password set" in second
    assert f"{SERVE[0]} READ registered_model {MODEL}: kept" in second
    search = f"{server}/api/2.0/mlflow/registered-models/get?name={MODEL}"
    assert httpx.get(search, auth=SERVE, timeout=120).status_code == 200
    assert (
        httpx.get(search, auth=("soccerpredict-serve", "an-older-serve-password"), timeout=120)
    ).status_code == 401


def test_each_user_can_do_what_its_role_needs_and_no_more(
    server: str, predictor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from serve_app.services import mlflow_loader
    from soccerpredict import registry
    from soccerpredict.models.pyfunc import OutcomeModel

    bootstrap(server)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # no client holds S3 credentials
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name  # looked up as each user below

    # the pipeline: a run with a report, a version with its manifest, the champion alias
    act_as(monkeypatch, PIPELINE)
    exp = experiment(EXPERIMENT)
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    directory = predictor.save(tmp_path / "models")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/calibration.json").write_text('{"ece": 0.01}')
    mlflow.set_tracking_uri(server)  # the conftest fixture puts it back
    with mlflow.start_run(experiment_id=exp.experiment_id) as run:
        mlflow.log_metrics({"test_rps": 0.2})
        mlflow.log_artifact(str(tmp_path / "reports/calibration.json"), artifact_path="reports")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=OutcomeModel(),
            artifacts={"predictor": str(directory)},
            registered_model_name=MODEL,
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    registry.record_manifest(client, MODEL, version, directory)
    client.set_registered_model_alias(MODEL, registry.CHAMPION, version)
    refused(lambda: client.delete_registered_model(MODEL))  # EDIT, not MANAGE

    # Serve: the champion from its data files, its run's metrics and report
    act_as(monkeypatch, SERVE)
    loaded = mlflow_loader(client, MODEL)(registry.CHAMPION)
    assert loaded.version == version
    np.testing.assert_array_equal(
        loaded.predictor.predict_proba(frame()), predictor.predict_proba(frame())
    )
    assert client.get_run(run.info.run_id).data.metrics["test_rps"] == 0.2
    report = client.download_artifacts(run.info.run_id, "reports/calibration.json", str(tmp_path))
    assert Path(report).read_text() == '{"ece": 0.01}'
    # ... and nothing that changes what is served
    source = client.get_model_version(MODEL, version).source
    refused(lambda: client.create_model_version(MODEL, source, run_id=run.info.run_id))
    refused(lambda: client.set_registered_model_alias(MODEL, registry.CHAMPION, version))
    refused(lambda: client.delete_registered_model_alias(MODEL, registry.CHAMPION))
    refused(lambda: client.set_model_version_tag(MODEL, version, registry.MANIFEST_TAG, "{}"))
    refused(lambda: client.create_run(exp.experiment_id))
    refused(lambda: client.log_artifact(run.info.run_id, str(report), "reports"))
    assert client.get_model_version_by_alias(MODEL, registry.CHAMPION).version == version

    # nobody: 401
    alias = f"{server}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion"
    assert httpx.get(alias, timeout=120).status_code == 401
    assert httpx.get(alias, auth=SERVE, timeout=120).status_code == 200
