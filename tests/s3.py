"""An S3-compatible server on 127.0.0.1 for tests: moto's standalone server, an in-memory S3
*emulator* (no registry here ships MinIO or another real S3 server). It accepts any
credentials and enforces no bucket policy, so it proves the S3 protocol paths (DVC's remote,
MLflow's artifact proxy), not MinIO's users or policies. Its venv comes from
requirements-s3-emulator.lock; the MLflow server's from requirements-mlflow.lock."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from serve_app.local import free_port, wait_for_port
from tests.kuberay_schema import REPO

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "dvc",
    "AWS_SECRET_ACCESS_KEY": "not-checked-by-moto",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ADMIN = ("admin", "admin-password-9")  # the basic-auth app wants 12 characters or more


def locked_venv(name: str, lock: str) -> Path:
    """REPO/.venv-<name> with exactly the lock's packages (made once per lock version)."""
    venv = REPO / f".venv-{name}"
    subprocess.run(
        ["bash", "scripts/locked_venv.sh", str(venv), lock], cwd=REPO, check=True, timeout=900
    )
    return venv


@contextmanager
def s3_emulator() -> Iterator[str]:
    venv = locked_venv("s3", "requirements-s3-emulator.lock")
    port = free_port()
    proc = subprocess.Popen(
        [str(venv / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def make_bucket(endpoint: str, bucket: str) -> None:
    httpx.put(f"{endpoint}/{bucket}", timeout=10).raise_for_status()


def object_keys(endpoint: str, bucket: str) -> list[str]:
    """Every key in the bucket (ListObjectsV2, unsigned: the emulator does not check)."""

    answer = httpx.get(
        f"{endpoint}/{bucket}", params={"list-type": "2", "max-keys": "1000"}, timeout=10
    )
    answer.raise_for_status()
    return re.findall(r"<Key>([^<]+)</Key>", answer.text)


@contextmanager
def mlflow_auth_server(s3: str, home: Path) -> Iterator[str]:
    """The MLflow tracking server from the server image's lock, as kuberay/base/mlflow.yaml runs
    it: MLflow's basic-auth app (admin ADMIN, default permission NO_PERMISSIONS), artifacts
    proxied (`--serve-artifacts`) to s3://mlflow on the emulator `s3`; its stores (SQLite, not
    Postgres) and log in `home`. Yields its URL on 127.0.0.1."""
    venv = locked_venv("mlflow", "requirements-mlflow.lock")
    make_bucket(s3, "mlflow")
    (home / "basic_auth.ini").write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{home}/auth.db\nadmin_username = {ADMIN[0]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        **os.environ,
        **CREDENTIALS,
        "MLFLOW_S3_ENDPOINT_URL": s3,
        "MLFLOW_AUTH_CONFIG_PATH": str(home / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "k" * 32,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    port = free_port()
    proc = subprocess.Popen(
        [
            str(venv / "bin/mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--artifacts-destination",
            "s3://mlflow",
            "--serve-artifacts",
        ],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(home / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
            time.sleep(1)
        else:
            raise TimeoutError((home / "server.log").read_text()[-3000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
