#!/usr/bin/env bash
# Serve the champion in the foreground: Redis (started here if none answers), `serve run
# conf/serve.yaml` on the Ray cluster at RAY_ADDRESS, an example request and its answer.
# Ctrl-C stops the app and whatever this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# Serve's switches (conf/serve.env), for a Ray that `serve run` starts itself; a cluster at
# RAY_ADDRESS was started with them (scripts/run_pipeline.sh)
set -a; source conf/serve.env; set +a
PORT=$(python -c "import yaml; print(yaml.safe_load(open('conf/serve.yaml'))['http_options']['port'])")
started_redis=""
serve_pid=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -INT "$serve_pid" 2>/dev/null || true   # `serve run` shuts the app down on Ctrl-C
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [ -n "$started_redis" ]; then redis-cli -u "$REDIS_URL" shutdown nosave >/dev/null 2>&1 || true; fi
}
trap cleanup INT TERM EXIT

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  port=$(python -c "from urllib.parse import urlparse; print(urlparse('$REDIS_URL').port or 6379)")
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
  started_redis=1
fi

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
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -30 var/serve.log; exit 1; }
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
echo "serving on http://127.0.0.1:$PORT (OpenAPI: /docs; Ray dashboard: http://127.0.0.1:8265). Ctrl-C stops it."
wait "$serve_pid"
