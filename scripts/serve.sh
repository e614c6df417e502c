#!/usr/bin/env bash
# Serve the champion in the foreground: both Redis instances (started here if none answers: the
# state one with its append-only file in var/redis-state, the LRU cache), `serve run
# conf/serve.yaml` on the Ray cluster at RAY_ADDRESS, the front clients call (HAProxy on
# 127.0.0.1:8000 before the Ingress replicas, serve_app/front.py; Serve's proxy on 8001 is its
# backup), an example request and its answer. Ctrl-C stops the app and whatever this script
# started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
# the URLs conf/runtime.yaml names (REDIS_URL / REDIS_CACHE_URL override them)
read -r REDIS_URL REDIS_CACHE_URL < <(python -c "from soccerpredict.config import load_config; s = load_config().runtime.serving; print(s.redis_url, s.cache_redis_url)")
export REDIS_URL REDIS_CACHE_URL
# Serve's switches (conf/serve.env), for a Ray that `serve run` starts itself; a cluster at
# RAY_ADDRESS was started with them (scripts/run_pipeline.sh)
set -a; source conf/serve.env; set +a
# Serve's proxy (conf/serve.yaml) and the front (conf/runtime.yaml serving.front_port)
PROXY_PORT=$(python -c "import yaml; print(yaml.safe_load(open('conf/serve.yaml'))['http_options']['port'])")
PORT=$(python -c "from soccerpredict.config import load_config; print(load_config().runtime.serving.front_port)")
started_redis=()
serve_pid=""
front_pid=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$front_pid" ]; then kill -TERM "$front_pid" 2>/dev/null || true; wait "$front_pid" 2>/dev/null || true; fi
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -INT "$serve_pid" 2>/dev/null || true   # `serve run` shuts the app down on Ctrl-C
    wait "$serve_pid" 2>/dev/null || true
  fi
  for url in "${started_redis[@]}"; do redis-cli -u "$url" shutdown >/dev/null 2>&1 || true; done
}
trap cleanup INT TERM EXIT

# start_redis URL ROLE: a redis-server configured as serve_app.local.REDIS_ROLES says, unless
# one answers at URL already
start_redis() {
  local url=$1 role=$2
  redis-cli -u "$url" ping >/dev/null 2>&1 && return
  mkdir -p "var/redis-$role"
  # shellcheck disable=SC2046  # the command's words, as redis_command returns them
  $(python -c "from pathlib import Path; from urllib.parse import urlparse; from serve_app.local import redis_command; print(' '.join(redis_command(urlparse('$url').port or 6379, Path('var/redis-$role'), '$role')))") --daemonize yes >/dev/null
  started_redis+=("$url")
}
start_redis "$REDIS_URL" state
start_redis "$REDIS_CACHE_URL" cache

# a demo key for this machine, kept in var/ (ignored by git); the page and curl use it
mkdir -p var
if [ ! -s var/demo.key ] || ! python -c "from serve_app.keys import KeyStore; import sys; from soccerpredict.config import load_config; sys.exit(KeyStore(load_config().runtime.serving.api_keys_file).verify(open('var/demo.key').read().strip()) is None)"; then
  python -m serve_app.keys create --name demo | tail -1 > var/demo.key
fi
KEY=$(cat var/demo.key)

# job control on for this one launch: the app gets its own process group (the terminal's Ctrl-C
# reaches this script, whose cleanup stops the app once) and SIGINT is not ignored, as it would
# be for a background command otherwise, so `serve run` shuts down cleanly
set -m
serve run conf/serve.yaml > var/serve.log 2>&1 &
serve_pid=$!
set +m
echo "starting the Serve app (log: var/serve.log) ..."
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PROXY_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -30 var/serve.log; exit 1; }
  sleep 1
done
# the front: HAProxy in the foreground (its config in var/haproxy/front.cfg), stopped by cleanup
python -m serve_app.front > var/front.log 2>&1 &
front_pid=$!
for _ in $(seq 1 30); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$front_pid" 2>/dev/null || { tail -30 var/front.log; exit 1; }
  sleep 1
done
BODY=$(python -m serve_app.example)
echo
echo "example request:"
echo "  curl -s -X POST http://127.0.0.1:$PORT/predict -H 'X-API-Key: $KEY' -H 'content-type: application/json' -d '$BODY'"
echo "answer:"
curl -s -X POST "http://127.0.0.1:$PORT/predict" -H "X-API-Key: $KEY" -H 'content-type: application/json' -d "$BODY"
echo
echo
echo "serving on http://127.0.0.1:$PORT, the front (Serve's proxy, its backup: :$PROXY_PORT; OpenAPI: /openapi.json; Ray dashboard: http://127.0.0.1:8265). Ctrl-C stops it."
wait "$serve_pid"
