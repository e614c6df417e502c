#!/usr/bin/env bash
# The main job, end to end: environment, a local Ray head on 127.0.0.1, `dvc repro`, then the
# Serve app and its front on 127.0.0.1:8000 in the foreground (scripts/serve.sh; SERVE=0 stops
# after the pipeline).
# DATA_DIR=<football-data folder> reads a local copy; without it the provider's URLs are used.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
git config user.email >/dev/null || git config user.email "pipeline@soccerpredict.local"
git config user.name >/dev/null || git config user.name "SoccerPredict pipeline"
# Serve's switches (conf/serve.env: throughput mode, direct-ingress ports, drain period), read by
# the cluster's processes, so they are set before Ray starts
set -a; source conf/serve.env; set +a
if [ -z "${RAY_ADDRESS:-}" ]; then
  # the custom resources of conf/runtime.yaml (Serve replicas need `serve`)
  resources=$(python -c "import json; from soccerpredict.config import load_config; print(json.dumps(load_config().runtime.ray.resources))")
  ray start --head --num-cpus=2 --resources="$resources" --port=6380 --dashboard-host=127.0.0.1 --disable-usage-stats
  trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
  export RAY_ADDRESS=127.0.0.1:6380
fi
dvc repro "$@"
dvc push -q   # the local remote (.dvcstore/) by default; S3/MinIO via `dvc remote add`
python -m ray_jobs.summary   # the test seasons and the backtest, short; `dvc metrics show` has all
if [ "${SERVE:-1}" != 0 ]; then
  # serve.sh stops the app and its Redis on INT or TERM. It runs as a job of its own (`set -m`:
  # a plain background child would inherit SIGINT ignored, and so would `serve run`), and this
  # script passes on Ctrl-C or a TERM sent to it alone; Ray stops after it (the EXIT trap)
  set -m
  bash scripts/serve.sh &
  serve_sh=$!
  set +m
  trap 'kill -TERM "$serve_sh" 2>/dev/null || true; wait "$serve_sh" || true; exit 130' INT TERM
  wait "$serve_sh"
fi
