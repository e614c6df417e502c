"""An S3-compatible server on 127.0.0.1 for tests: moto's standalone server, an in-memory S3
*emulator* (no registry here ships MinIO or another real S3 server). It accepts any
credentials and enforces no bucket policy, so it proves the S3 protocol paths (DVC's remote,
MLflow's artifact proxy), not MinIO's users or policies. Its venv comes from
requirements-s3-emulator.lock; the MLflow server's from requirements-mlflow.lock."""

from __future__ import annotations

import re
import subprocess
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
