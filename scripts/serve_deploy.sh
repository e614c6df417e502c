#!/usr/bin/env bash
# Deploy conf/serve.yaml onto the Ray cluster whose head runs this script. On KubeRay the head
# container starts it in the background beside `ray start` (kuberay/base/ray-cluster.yaml), so
# a new or restarted head serves again without anyone's help.
#
# Waits for the dashboard and for a champion in the registry (a first install has none until
# the pipeline RayJob has run), then `serve deploy` of conf/serve.yaml with the proxy on
# SERVE_HOST (0.0.0.0 in the pod, so the Service reaches it). Re-deploying an unchanged config
# restarts nothing. Token auth: the CLI reads RAY_AUTH_MODE and RAY_AUTH_TOKEN, which KubeRay
# sets on every Ray container.
set -uo pipefail
cd "$(dirname "$0")/.."
address="${RAY_DASHBOARD_ADDRESS:-http://127.0.0.1:8265}"
host="${SERVE_HOST:-0.0.0.0}"

champion() {
  python - <<'EOF' >/dev/null 2>&1
from mlflow import MlflowClient
from ray_jobs.cli import job_config
conf = job_config("params.yaml", "conf/runtime.yaml").runtime.mlflow
MlflowClient(conf.tracking_uri).get_model_version_by_alias(conf.model_name, "champion")
EOF
}

until serve status --address "$address" >/dev/null 2>&1; do sleep 5; done
until champion; do
  echo "serve_deploy: no champion in the registry yet; next look in 60 s"
  sleep 60
done
config="$(mktemp --suffix=.yaml)"
python -m serve_app.deploy_config --host "$host" > "$config"
serve deploy "$config" --address "$address"
