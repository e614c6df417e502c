# syntax=docker/dockerfile:1
# Three images from one file, all with the repository's layout under /app (WORKDIR), so the
# configs' relative paths (params.yaml, conf/*.yaml) and `python -m <package>.<module>` work as
# in a checkout; the source is on PYTHONPATH, not installed, so PROJECT_ROOT is /app.
#
#   docker build --target serve  -t soccerpredict-serve:TAG .   # Ray head: Serve, no training deps
#   docker build --target jobs   -t soccerpredict-jobs:TAG .    # Ray workers: pipeline, scrape, drift
#   docker build --target mlflow -t soccerpredict-mlflow:TAG .  # tracking server (Postgres + S3)
#
# Every Ray node runs the same Python and Ray (the base image and the ray pin), as Ray requires.
# Pins come from pyproject.toml through docker/requirements.py; tests/test_kuberay.py checks
# that everything named here exists and that the serve image covers the Serve app's imports.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /build
COPY pyproject.toml docker/requirements.py ./
RUN python requirements.py serve > serve.txt \
 && python requirements.py jobs > jobs.txt \
 && python requirements.py mlflow > mlflow.txt

FROM ${PYTHON_IMAGE} AS runtime
# wget: KubeRay's probes on Ray containers; uid 1000 as in Ray's own images
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home ray
ENV PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DVC_NO_ANALYTICS=1 \
    DO_NOT_TRACK=true
WORKDIR /app

FROM runtime AS serve
COPY --from=requirements /build/serve.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY --chown=1000:1000 . /app
USER 1000
# no CMD: KubeRay runs `ray start` (kuberay/base/ray-cluster.yaml); the head also runs
# scripts/serve_deploy.sh. Serve proxy, dashboard, GCS, metrics:
EXPOSE 8000 8265 6379 8080

FROM runtime AS jobs
# Debian's Chromium for the scraper (conf/runtime.yaml scrape.chromium); Playwright's own
# browser download is never used
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium \
 && rm -rf /var/lib/apt/lists/*
COPY --from=requirements /build/jobs.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY --chown=1000:1000 . /app
USER 1000
# no CMD: KubeRay runs `ray start`; RayJobs name their entrypoints (kuberay/base/ray-job.*.yaml)

FROM runtime AS mlflow
COPY --from=requirements /build/mlflow.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
USER 1000
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
