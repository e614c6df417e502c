#!/usr/bin/env bash
# The DVC pipeline as a RayJob on the KubeRay cluster (kuberay/base/ray-job.pipeline.yaml, and
# weekly by kuberay/base/ray-cronjob.retrain.yaml): `dvc repro`, tune included, with the
# promotion gates deciding whether the champion changes; Serve follows the alias by itself.
#
# The image has no .git: DVC runs without SCM. Its outputs, cache and lock live on the state
# volume mounted over data/, models/, reports/, ray_results/, var/ and .dvc/cache, and the
# remote is the MinIO bucket (credentials from the environment, never from a file in the repo).
# Stages join the running cluster through RAY_ADDRESS, which Ray sets for a job's driver.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=var/dvc.lock   # dvc.lock in the image is the repository's; the cluster's own is kept here
dvc config --local core.no_scm true
dvc remote add --local --force --default minio "s3://${DVC_BUCKET:-dvc}"
dvc remote modify --local minio endpointurl "${S3_ENDPOINT_URL:-http://minio:9000}"
if [ -s "$lock" ]; then cp "$lock" dvc.lock; fi
dvc pull --allow-missing || echo "cluster_pipeline: nothing to pull yet"
dvc repro "$@"
cp dvc.lock "$lock"
dvc push
dvc metrics show
