#!/usr/bin/env bash
# A venv with exactly one lock file's packages, hash-checked: `bash scripts/locked_venv.sh
# <folder> <lock>`. Brought in step only when the lock changed: what the lock names is
# installed, anything else removed. The tests use it for the servers that must not share the
# project's environment: the MLflow server image's (requirements-mlflow.lock) and the S3
# emulator's (requirements-s3-emulator.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 lock=$2
sum="$(sha256sum "$lock" | cut -d' ' -f1)"
[ "$(cat "$venv/.lock.sha256" 2>/dev/null)" = "$sum" ] && exit 0
[ -x "$venv/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$venv"
"$venv/bin/pip" install --quiet --require-hashes \
  -r <("$venv/bin/python" docker/requirements.py block requirements.lock pip)
"$venv/bin/pip" install --quiet --require-hashes -r "$lock"
extra=$("$venv/bin/python" -I - "$lock" <<'PY'
import importlib.metadata as md, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
locked = {norm(m) for m in re.findall(r"^([A-Za-z0-9][\w.-]*)==", open(sys.argv[1]).read(), re.M)}
print(" ".join(sorted({norm(d.metadata["Name"]) for d in md.distributions()} - locked - {"pip"})))
PY
)
[ -z "$extra" ] || "$venv/bin/pip" uninstall --quiet -y $extra
echo "$sum" > "$venv/.lock.sha256"
