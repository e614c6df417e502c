#!/usr/bin/env bash
# Every test: unit, data, Ray, MLflow and DVC integration. Markers are for local loops only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
if [ -z "${DATA_DIR:-}" ] && [ -d ../shared/data/football-data ]; then
  export DATA_DIR="$(cd ../shared/data/football-data && pwd)"
fi
python -m pytest "$@"
