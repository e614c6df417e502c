#!/usr/bin/env bash
# New random credentials for an environment, written only SOPS-encrypted (age) to
# kuberay/overlays/<env>/secrets.enc.yaml for the recipients .sops.yaml lists for that path.
# The plain text never touches the disk: it goes from Python's `secrets` through a pipe into
# `sops encrypt`. Running it again rotates every credential (re-apply and restart the pods).
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
import os
import secrets

token = lambda: secrets.token_urlsafe(32)  # noqa: E731 - URL-safe: some go into URLs below
redis, postgres = token(), token()
values = {
    "soccerpredict-ray-auth": {"auth_token": token()},
    "soccerpredict-redis": {"REDIS_PASSWORD": redis,
                            "REDIS_URL": f"redis://:{redis}@redis:6379/0"},
    "soccerpredict-postgres": {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": postgres,
                               "POSTGRES_DB": "mlflow"},
    "soccerpredict-mlflow": {
        "MLFLOW_BACKEND_STORE_URI": f"postgresql://mlflow:{postgres}@postgres:5432/mlflow"},
    "soccerpredict-minio": {"AWS_ACCESS_KEY_ID": f"soccerpredict-{secrets.token_hex(4)}",
                            "AWS_SECRET_ACCESS_KEY": token()},
    "soccerpredict-grafana": {"GF_SECURITY_ADMIN_USER": "admin",
                              "GF_SECURITY_ADMIN_PASSWORD": token()},
}
for name, data in values.items():  # YAML by hand: every value is a plain URL-safe string
    print(f"---\napiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: {name}\n"
          f"  namespace: {os.environ['NAMESPACE']}\n  labels:\n"
          f"    app.kubernetes.io/part-of: soccerpredict\nstringData:")
    for key, value in data.items():
        print(f'  {key}: "{value}"')
PY
}

mkdir -p "$(dirname "$out")"
plain_secrets | "$SOPS" encrypt --input-type yaml --output-type yaml \
  --filename-override "$out" /dev/stdin > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (encrypted for the age recipients of .sops.yaml)"
