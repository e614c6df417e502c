"""Rotate the Postgres password of MLflow's store: in the database first, then in the Secrets.

Postgres reads POSTGRES_PASSWORD only when it makes its data directory, so a new Secret alone
cuts MLflow off. Here the role gets the new password by `ALTER ROLE` (as a SCRAM-SHA-256
verifier made here: the plain password never reaches the server or its log), and only once
that worked are the Secrets rewritten: POSTGRES_PASSWORD, MLflow's store URI and the
basic-auth config that points at the same database. The plain Secrets go from `sops decrypt`
through memory to `sops encrypt`; nothing plain touches the disk.

    python -m soccerpredict.ops.rotate --secrets kuberay/overlays/dev/secrets.enc.yaml \
      --psql "kubectl -n soccerpredict-dev exec -i statefulset/postgres -- psql -U mlflow -d mlflow"
    sops -d kuberay/overlays/dev/secrets.enc.yaml | kubectl apply -f -
    kubectl -n soccerpredict-dev rollout restart deployment/mlflow
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret Postgres stores for a password (RFC 7677, as libpq makes it)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def alter_role_sql(role: str, verifier: str) -> str:
    quoted_role = '"' + role.replace('"', '""') + '"'
    return f"ALTER ROLE {quoted_role} PASSWORD '{verifier}';\n"


def rotate_in_database(psql: list[str], role: str, password: str) -> None:
    """Raises CalledProcessError (the database unchanged) if psql refuses."""
    subprocess.run(
        [*psql, "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"],
        input=alter_role_sql(role, scram_verifier(password)),
        text=True,
        check=True,
        capture_output=True,
    )


def rotated(docs: list[Doc], password: str) -> list[Doc]:
    """The Secrets with Postgres' password replaced wherever it appears."""
    by_name = {d["metadata"]["name"]: d["stringData"] for d in docs}
    old = by_name["soccerpredict-postgres"]["POSTGRES_PASSWORD"]
    by_name["soccerpredict-postgres"]["POSTGRES_PASSWORD"] = password
    mlflow = by_name["soccerpredict-mlflow"]
    for key in ("MLFLOW_BACKEND_STORE_URI", "basic_auth.ini"):
        if f":{old}@" not in mlflow[key]:
            raise ValueError(f"soccerpredict-mlflow {key} does not hold the current password")
        mlflow[key] = mlflow[key].replace(f":{old}@", f":{password}@")
    return docs


def sops(args: list[str], text: str | None = None) -> str:
    binary = os.environ.get("SOPS", "sops")
    return subprocess.run(
        [binary, *args], input=text, text=True, capture_output=True, check=True
    ).stdout


def rotate(secrets_file: Path, psql: list[str], password: str | None = None) -> None:
    docs = [d for d in yaml.safe_load_all(sops(["decrypt", str(secrets_file)])) if d]
    role = next(d for d in docs if d["metadata"]["name"] == "soccerpredict-postgres")["stringData"][
        "POSTGRES_USER"
    ]
    password = password or secrets.token_urlsafe(32)
    new_docs = rotated(docs, password)  # fails before the database if the file is odd
    rotate_in_database(psql, role, password)  # the database first ...
    plain = yaml.safe_dump_all(new_docs, sort_keys=False)
    encrypted = sops(
        [
            "encrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "--filename-override",
            str(secrets_file),
            "/dev/stdin",
        ],
        plain,
    )
    tmp = secrets_file.with_suffix(".tmp")
    tmp.write_text(encrypted)
    tmp.replace(secrets_file)  # ... then the Secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secrets", type=Path, required=True)
    parser.add_argument("--psql", required=True, help="a psql command line that reaches the store")
    args = parser.parse_args(argv)
    rotate(args.secrets, shlex.split(args.psql))
    print(f"rotated in the database, then in {args.secrets}: apply it and restart mlflow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
