#!/usr/bin/env bash
# The Debian packages the main job and the tests use: checked quickly, installed when missing.
# Sourced by scripts/setup_env.sh, so both README commands and .ci/run get them. Add a package here
# when other work needs one (its line says who uses it).
#   redis-server  Serve's cache, async jobs and rate limits (scripts/serve.sh, the Serve tests)
#   chromium      the WhoScored scraper and the web-page tests (Playwright drives Debian's build)
#   prometheus    promtool and a real Prometheus in tests/test_monitoring*.py
#   wrk           the load generator of benchmarks/ and the load tests
#   age           the SOPS round trip of tests/test_secrets.py
#   haproxy       the front clients call on port 8000, before the Ingress replicas
#                 (serve_app/front.py; scripts/serve.sh, the Serve tests, the benchmarks)
#   curl, git     scripts/serve.sh's health check; DVC and the pipeline tests
#   postgresql    a real Postgres for the secret-rotation test (tests/test_rotation.py:
#                 initdb + pg_ctl on 127.0.0.1 in a temp folder; no daemon of the package used)
# SYSTEM_PACKAGES=0 skips the check (a machine whose packages come from elsewhere).
SOCCERPREDICT_SYSTEM_PACKAGES=(redis-server chromium prometheus wrk age curl git postgresql haproxy)

system_packages_missing() {
  local pkg
  for pkg in "${SOCCERPREDICT_SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

system_packages_refuse() {   # <reason> <package>...
  local reason=$1; shift
  echo "error: missing Debian packages: $* $reason" >&2
  echo "install them, then run this command again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $*" >&2
  return 1
}

system_packages_install() {
  [ "${SYSTEM_PACKAGES:-1}" = 0 ] && return 0
  local missing
  missing=$(system_packages_missing 2>/dev/null || true)
  command -v dpkg-query >/dev/null || missing="${SOCCERPREDICT_SYSTEM_PACKAGES[*]}"
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086
  set -- $missing
  command -v apt-get >/dev/null || { system_packages_refuse "(no apt-get on this machine)" "$@"; return 1; }
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"
    elif command -v sudo >/dev/null && [ -t 0 ]; then sudo="sudo"   # asks for the password
    else system_packages_refuse "(not root, and sudo cannot run without a password)" "$@"; return 1; fi
  fi
  echo "installing Debian packages: $* ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@"; } \
       >/tmp/soccerpredict-apt.log 2>&1; then
    tail -5 /tmp/soccerpredict-apt.log >&2
    system_packages_refuse "(apt-get failed: no network or no such package; log above)" "$@"
    return 1
  fi
  missing=$(system_packages_missing)
  [ -z "$missing" ] || { system_packages_refuse "(still missing after apt-get)" $missing; return 1; }
}

# run as a script: `bash scripts/system_packages.sh` (install) or `... --check` (list the missing)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ "${1:-}" = --check ]; then system_packages_missing; else system_packages_install; fi
fi
