#!/usr/bin/env bash
# Lint, format check and type check of the packages (what .ci/run runs before the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
packages=(soccerpredict ray_jobs serve_app)
ruff check "${packages[@]}" tests benchmarks
ruff format --check "${packages[@]}"
mypy  # [tool.mypy] in pyproject.toml: the three packages
