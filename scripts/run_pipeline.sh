#!/usr/bin/env bash
# The main job, end to end: environment, a local Ray head on 127.0.0.1, then `dvc repro`.
# DATA_DIR=<football-data folder> reads a local copy; without it the provider's URLs are used.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
git config user.email >/dev/null || git config user.email "pipeline@soccerpredict.local"
git config user.name >/dev/null || git config user.name "SoccerPredict pipeline"
if [ -z "${RAY_ADDRESS:-}" ]; then
  ray start --head --num-cpus=2 --port=6379 --dashboard-host=127.0.0.1 --disable-usage-stats
  trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
  export RAY_ADDRESS=127.0.0.1:6379
fi
dvc repro "$@"
dvc push -q   # the local remote (.dvcstore/) by default; S3/MinIO via `dvc remote add`
dvc metrics show
