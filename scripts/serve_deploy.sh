#!/usr/bin/env bash
# Keep the Serve app deployed on the Ray cluster whose head runs this script. On KubeRay the
# head container starts it in the background beside `ray start` (kuberay/base/ray-cluster.yaml)
# for the pod's whole life; everything it says goes to stdout, so `kubectl logs` shows it.
#
# Every round: is the dashboard up, is there a champion (soccerpredict.ops.champion tells "none
# yet" from a registry error and says which), then `serve deploy` of SERVE_CONFIG (the
# serve-config ConfigMap on the cluster; conf/serve.yaml locally) with the proxy on SERVE_HOST.
# Re-deploying an unchanged config restarts nothing, so the loop simply goes on: an app lost
# with a restarted head, or a deploy that failed, is deployed again at the next round. Failures
# back off from 5 s to 5 min; after a success the next round is SERVE_DEPLOY_INTERVAL_S later.
# SERVE_DEPLOY_MAX_ROUNDS (0: no end) bounds it for tests. Token auth: the CLI reads
# RAY_AUTH_MODE and RAY_AUTH_TOKEN, which KubeRay sets on every Ray container.
set -uo pipefail
cd "$(dirname "$0")/.."
address="${RAY_DASHBOARD_ADDRESS:-http://127.0.0.1:8265}"
host="${SERVE_HOST:-0.0.0.0}"
source_config="${SERVE_CONFIG:-conf/serve.yaml}"
interval="${SERVE_DEPLOY_INTERVAL_S:-60}"
max_rounds="${SERVE_DEPLOY_MAX_ROUNDS:-0}"

log() { echo "serve_deploy: $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

deploy() {   # one `serve deploy`; its own output goes to stdout too
  local config rc
  config="$(mktemp --suffix=.yaml)"
  python -m serve_app.deploy_config --config "$source_config" --host "$host" > "$config" \
    && serve deploy "$config" --address "$address"
  rc=$?
  rm -f "$config"
  return $rc
}

round=0 delay=5 deployed=""
while [ "$max_rounds" -eq 0 ] || [ "$round" -lt "$max_rounds" ]; do
  round=$((round + 1))
  if ! serve status --address "$address" >/dev/null 2>&1; then
    log "the dashboard at $address does not answer yet"
  elif ! status="$(python -m soccerpredict.ops.champion 2>&1)"; then
    log "not deploying: ${status##*$'\n'}"
  elif deploy; then
    digest="$(sha256sum "$source_config" | cut -c1-12)"
    [ "$digest" = "$deployed" ] || log "deployed $source_config ($digest); $status"
    deployed="$digest" delay="$interval"
  else
    log "serve deploy of $source_config failed (exit $?); next try in ${delay} s"
  fi
  [ "$max_rounds" -ne 0 ] && [ "$round" -ge "$max_rounds" ] && break
  sleep "$delay"
  [ "$deployed" ] || delay=$(( delay * 2 > 300 ? 300 : delay * 2 ))
done
