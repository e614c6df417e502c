#!/usr/bin/env bash
# New random credentials for an environment, written only SOPS-encrypted (age) to
# kuberay/overlays/<env>/secrets.enc.yaml for the recipients .sops.yaml lists for that path.
# The plain text never touches the disk: it goes from Python's `secrets` through a pipe into
# `sops encrypt`. Running it again makes every credential anew: right for a new environment,
# not for a running one, whose Postgres keeps the password it was first started with (rotate
# that one with `python -m soccerpredict.ops.rotate`: the database first, then the Secrets).
#
#   bash scripts/dev_secrets.sh [env] [namespace]        # default: dev soccerpredict-dev
#   sops -d kuberay/overlays/dev/secrets.enc.yaml | kubectl apply -f -
set -euo pipefail
cd "$(dirname "$0")/.."
env="${1:-dev}"
namespace="${2:-soccerpredict-$env}"
out="kuberay/overlays/$env/secrets.enc.yaml"
SOPS="${SOPS:-sops}"

plain_secrets() {
  NAMESPACE="$namespace" python3 - <<'PY'
import json
import os
import secrets

token = lambda: secrets.token_urlsafe(32)  # noqa: E731 - URL-safe: some go into URLs below
postgres = token()
store = f"postgresql://mlflow:{postgres}@postgres:5432/mlflow"
values = {
    "soccerpredict-ray-auth": {"auth_token": token()},
    "soccerpredict-postgres": {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": postgres,
                               "POSTGRES_DB": "mlflow"},
    # the tracking server: its store, its basic-auth config (user store in the same database)
    "soccerpredict-mlflow": {
        "MLFLOW_BACKEND_STORE_URI": store,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": token(),
        "basic_auth.ini": ("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                           f"database_uri = {store}\nadmin_username = admin\n"
                           "authorization_function = "
                           "mlflow.server.auth:authenticate_request_basic_auth\n")},
    # MLflow's admin: the server's first start and the mlflow-users Job only
    "soccerpredict-mlflow-auth": {"MLFLOW_TRACKING_USERNAME": "admin",
                                  "MLFLOW_TRACKING_PASSWORD": token()},
    # MLflow users the mlflow-users Job creates and grants (soccerpredict/ops/mlflow_users.py):
    # the pipeline (Ray worker: runs, versions, aliases) and Serve (Ray head: read only)
    "soccerpredict-mlflow-pipeline": {"MLFLOW_TRACKING_USERNAME": "soccerpredict-pipeline",
                                      "MLFLOW_TRACKING_PASSWORD": token()},
    "soccerpredict-mlflow-serve": {"MLFLOW_TRACKING_USERNAME": "soccerpredict-serve",
                                   "MLFLOW_TRACKING_PASSWORD": token()},
    # MinIO's root (MinIO and the bucket Job only) and one user per service
    "soccerpredict-minio": {"AWS_ACCESS_KEY_ID": f"soccerpredict-{secrets.token_hex(4)}",
                            "AWS_SECRET_ACCESS_KEY": token()},
    "soccerpredict-minio-dvc": {"AWS_ACCESS_KEY_ID": "dvc", "AWS_SECRET_ACCESS_KEY": token()},
    "soccerpredict-minio-mlflow": {"AWS_ACCESS_KEY_ID": "mlflow",
                                   "AWS_SECRET_ACCESS_KEY": token()},
    "soccerpredict-grafana": {"GF_SECURITY_ADMIN_USER": "admin",
                              "GF_SECURITY_ADMIN_PASSWORD": token()},
}
for name in ("cache", "state"):  # the password as a config file Redis includes, and the URL
    password = token()
    values[f"soccerpredict-redis-{name}"] = {
        "auth.conf": f"requirepass {password}\n",
        "REDIS_URL": f"redis://:{password}@redis-{name}:6379/0"}
for name, data in values.items():  # YAML by hand; values as JSON strings (valid YAML)
    print(f"---\napiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: {name}\n"
          f"  namespace: {os.environ['NAMESPACE']}\n  labels:\n"
          f"    app.kubernetes.io/part-of: soccerpredict\nstringData:")
    for key, value in data.items():
        print(f"  {key}: {json.dumps(value)}")
PY
}

mkdir -p "$(dirname "$out")"
plain_secrets | "$SOPS" encrypt --input-type yaml --output-type yaml \
  --filename-override "$out" /dev/stdin > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (encrypted for the age recipients of .sops.yaml)"
