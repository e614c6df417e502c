#!/usr/bin/env bash
# Lint, format check and type check of the packages: `scripts/lint.sh [check] [format] [types]`,
# all three without arguments. .ci/run runs all three before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
packages=(soccerpredict ray_jobs serve_app)
for step in "${@:-check format types}"; do
  for s in $step; do
    case "$s" in
      check) ruff check "${packages[@]}" tests benchmarks ;;
      format) ruff format --check "${packages[@]}" tests benchmarks ;;
      types) mypy ;;  # [tool.mypy] in pyproject.toml: the three packages
      *) echo "unknown step $s (check, format, types)" >&2; exit 2 ;;
    esac
  done
done
