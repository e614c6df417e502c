"""DVC and MLflow against an S3-compatible server on 127.0.0.1 (moto's emulator: tests/s3.py
says what that does and does not prove).

* scripts/cluster_pipeline.sh itself, in a DVC project without git as in the jobs image, runs
  a small pipeline, pushes its outputs to s3://dvc; a second copy of the project (another pod:
  same lock file on the state volume, no cache, no outputs) pulls them back byte for byte.
* The MLflow server from the server image's lock, with basic auth, proxies artifacts to
  s3://mlflow; a client with credentials logs and registers a model, which lands in the
  bucket and loads back with the same predictions; without credentials it gets 401.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.kuberay_schema import REPO
from tests.s3 import (
    ADMIN,
    CREDENTIALS,
    make_bucket,
    mlflow_auth_server,
    object_keys,
    s3_emulator,
)

pytestmark = pytest.mark.slow
STAGE = """import json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = int(open("params.txt").read())
pq.write_table(pa.table({"match": list(range(rows)), "p_home": [i / rows for i in range(rows)]}),
               "data/out.parquet")
json.dump({"rows": rows}, open("metrics.json", "w"))
"""
DVC_YAML = """stages:
  make:
    cmd: python make.py
    deps: [make.py, params.txt]
    outs: [data/out.parquet]
    metrics: [metrics.json]
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with s3_emulator() as endpoint:
        yield endpoint


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project(root: Path) -> Path:
    """A DVC project without git, laid out as /app in the jobs image."""
    (root / "scripts").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "var").mkdir()
    shutil.copy(REPO / "scripts/cluster_pipeline.sh", root / "scripts")
    (root / "make.py").write_text(STAGE)
    (root / "params.txt").write_text("500\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=root, check=True)
    return root


def test_dvc_push_and_pull_round_trip_through_s3(s3: str, tmp_path: Path) -> None:
    make_bucket(s3, "dvc")
    env = {
        **os.environ,
        **CREDENTIALS,
        "S3_ENDPOINT_URL": s3,
        "DVC_BUCKET": "dvc",
        "DVC_NO_ANALYTICS": "1",
    }
    first = project(tmp_path / "pod-1")
    subprocess.run(
        ["bash", "scripts/cluster_pipeline.sh"],
        cwd=first,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    output = sha256(first / "data/out.parquet")
    assert any(key.startswith("files/md5/") for key in object_keys(s3, "dvc"))
    second = project(tmp_path / "pod-2")  # the state volume's lock, nothing else
    shutil.copy(first / "var/dvc.lock", second / "var/dvc.lock")
    shutil.copy(first / "var/dvc.lock", second / "dvc.lock")
    subprocess.run(
        ["dvc", "remote", "add", "--local", "--default", "minio", "s3://dvc"],
        cwd=second,
        check=True,
    )
    subprocess.run(
        ["dvc", "remote", "modify", "--local", "minio", "endpointurl", s3], cwd=second, check=True
    )
    subprocess.run(
        ["dvc", "pull"], cwd=second, env=env, check=True, capture_output=True, timeout=300
    )
    assert sha256(second / "data/out.parquet") == output
    assert (second / "metrics.json").read_text() == (first / "metrics.json").read_text()
    status = subprocess.run(
        ["dvc", "status"], cwd=second, env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "up to date" in status.lower(), status


@pytest.fixture(scope="module")
def mlflow_server(s3: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_auth_server(s3, tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


def test_mlflow_needs_credentials(mlflow_server: str) -> None:
    search = f"{mlflow_server}/api/2.0/mlflow/experiments/search?max_results=1"
    # generous timeouts: the first requests import the auth app, on a shared 2-core machine
    assert httpx.get(search, timeout=120).status_code == 401
    assert httpx.get(search, auth=("admin", "wrong"), timeout=120).status_code == 401
    assert httpx.get(search, auth=ADMIN, timeout=120).status_code == 200


def test_a_model_goes_through_the_artifact_proxy_to_s3_and_loads_back(
    mlflow_server: str, s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # the client holds no S3 credentials
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    mlflow.set_tracking_uri(mlflow_server)
    x = np.random.default_rng(0).normal(size=(200, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    mlflow.set_experiment("s3-proxy")
    with mlflow.start_run() as run:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="s3-proxied")
    keys = object_keys(s3, "mlflow")
    assert any(k.endswith("/MLmodel") for k in keys), keys
    assert any(k.endswith(("/model.pkl", "/model.skops")) for k in keys), keys
    loaded = mlflow.pyfunc.load_model(f"models:/s3-proxied/{info.registered_model_version}")
    assert np.array_equal(loaded.predict(x), model.predict(x))
