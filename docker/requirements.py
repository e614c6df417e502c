"""The pinned requirements of each image, from pyproject.toml's one list of pins
(`python docker/requirements.py serve|jobs|mlflow [pyproject.toml]`, run by the Dockerfile).

* serve: what the Serve app imports (checked against serve_app's import closure by
  tests/test_kuberay.py), without the training-only packages below;
* jobs: every dependency, plus DVC's S3 remote (the `cluster-jobs` extra);
* mlflow: the tracking server on Postgres with artifacts in S3 (MinIO): the `mlflow` pin and
  the `cluster-mlflow` extra.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Needed by the pipeline, the scrape or the drift job, never by a Serve replica.
TRAINING_ONLY = {"dvc", "great-expectations", "evidently", "optuna", "playwright", "matplotlib",
                 "tqdm"}
SERVE_RAY_EXTRAS = "serve"  # ray[serve,tune,data] for the jobs, ray[serve] for serving
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def name_of(requirement: str) -> str:
    match = NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match[1].lower().replace("_", "-")


def pins(pyproject: Path) -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return project["dependencies"], project.get("optional-dependencies", {})


def image_requirements(image: str, pyproject: Path) -> list[str]:
    dependencies, extras = pins(pyproject)
    if image == "jobs":
        return dependencies + extras["cluster-jobs"]
    if image == "serve":
        kept = [r for r in dependencies if name_of(r) not in TRAINING_ONLY]
        return [re.sub(r"^ray\[[^\]]*\]", f"ray[{SERVE_RAY_EXTRAS}]", r) for r in kept]
    if image == "mlflow":
        return [r for r in dependencies if name_of(r) == "mlflow"] + extras["cluster-mlflow"]
    raise SystemExit(f"unknown image {image!r}: serve, jobs or mlflow")


if __name__ == "__main__":
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("pyproject.toml")
    print("\n".join(image_requirements(sys.argv[1], path)))
