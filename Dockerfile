# syntax=docker/dockerfile:1
# Three images from one file, all with the repository's layout under /app (WORKDIR), so the
# configs' relative paths (params.yaml, conf/*.yaml) and `python -m <package>.<module>` work as
# in a checkout; the source is on PYTHONPATH, not installed, so PROJECT_ROOT is /app.
#
#   docker build --target serve  -t soccerpredict-serve:TAG .   # Ray head: Serve, no training deps
#   docker build --target jobs   -t soccerpredict-jobs:TAG .    # Ray workers: pipeline, scrape, drift
#   docker build --target mlflow -t soccerpredict-mlflow:TAG .  # tracking server (Postgres + S3)
#
# Every Ray node runs the same Python and the same packages, as Ray requires: one base image,
# one lock (requirements.lock, scripts/lock.sh), of which docker/requirements.py gives each
# Ray image its part; the MLflow server has its own lock. Every install checks sha256 hashes.
# tests/test_kuberay.py checks that everything named here exists and that the serve image
# covers the Serve app's imports; tests/test_lock.py that the locks match pyproject.toml.
#
# The code under /app belongs to root and is read-only to uid 1000, which runs it; bytecode is
# compiled at build time. Only the jobs image's dvc.lock and .dvc/ belong to uid 1000 (DVC
# writes them). Tags: scripts/build_images.sh (<version>-<commit>, never reused).
#
# Base image NOT yet pinned by digest: this machine cannot reach a registry to resolve one.
# With network: `docker buildx imagetools inspect python:3.11-slim-bookworm` and set
# PYTHON_IMAGE below to python:3.11-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /build
COPY pyproject.toml requirements.lock docker/requirements.py ./
RUN python requirements.py block requirements.lock pip > pip.txt \
 && python requirements.py locked serve requirements.lock > serve.txt \
 && python requirements.py locked jobs requirements.lock > jobs.txt

FROM ${PYTHON_IMAGE} AS runtime
# wget: KubeRay's probes on Ray containers; uid 1000 as in Ray's own images
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home ray
ENV PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DVC_NO_ANALYTICS=1 \
    DO_NOT_TRACK=true
# the locked pip first: older ones fail on extras (pandas[parquet]) under --require-hashes
COPY --from=requirements /build/pip.txt /tmp/pip.txt
RUN pip install --require-hashes -r /tmp/pip.txt && rm /tmp/pip.txt
WORKDIR /app

FROM runtime AS serve
# Debian's HAProxy: the front on port 8000 (serve_app/front.py, the head pod's `front` container)
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY --from=requirements /build/serve.txt /tmp/requirements.txt
RUN pip install --require-hashes -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY . /app
RUN python -m compileall -q /app
USER 1000
# no CMD: KubeRay runs `ray start` (kuberay/base/ray-cluster.yaml); the head also runs
# scripts/serve_deploy.sh. The front (HAProxy), Serve's proxy, dashboard, GCS, metrics:
EXPOSE 8000 8001 8265 6379 8080

FROM runtime AS jobs
# Debian's Chromium for the scraper (conf/runtime.yaml scrape.chromium); Playwright's own
# browser download is never used
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium \
 && rm -rf /var/lib/apt/lists/*
COPY --from=requirements /build/jobs.txt /tmp/requirements.txt
RUN pip install --require-hashes -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY . /app
RUN python -m compileall -q /app \
 && chown 1000:1000 /app/dvc.lock \
 && chown -R 1000:1000 /app/.dvc
USER 1000
# no CMD: KubeRay runs `ray start`; RayJobs name their entrypoints (kuberay/base/ray-job.*.yaml)

FROM runtime AS mlflow
COPY requirements-mlflow.lock /tmp/requirements.txt
RUN pip install --require-hashes -r /tmp/requirements.txt && rm /tmp/requirements.txt
USER 1000
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
