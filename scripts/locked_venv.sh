#!/usr/bin/env bash
# A venv with exactly one lock file's packages, hash-checked: `bash scripts/locked_venv.sh
# <folder> <lock>`. Made again only when the lock changed. The tests use it for the servers
# that must not share the project's environment: the MLflow server image's
# (requirements-mlflow.lock) and the S3 emulator's (requirements-s3-emulator.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 lock=$2
sum="$(sha256sum "$lock" | cut -d' ' -f1)"
[ "$(cat "$venv/.lock.sha256" 2>/dev/null)" = "$sum" ] && exit 0
rm -rf "$venv"
"${PYTHON:-python3.11}" -m venv "$venv"
"$venv/bin/pip" install --quiet --require-hashes \
  -r <("$venv/bin/python" docker/requirements.py block requirements.lock pip)
"$venv/bin/pip" install --quiet --require-hashes -r "$lock"
echo "$sum" > "$venv/.lock.sha256"
