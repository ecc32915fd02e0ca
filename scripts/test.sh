#!/usr/bin/env bash
# The test command: install (from the lock), lint (ruff), types (mypy), then the suite on
# both cores with line coverage of at least 90%.
#   bash scripts/test.sh             the default tier: every test but the `system`,
#                                    `browser`, `bench` and `fuzz` tiers; few hypothesis
#                                    examples
#   bash scripts/test.sh --all       every tier, more hypothesis examples (what CI runs)
#   bash scripts/test.sh --latest    the same against the newest versions pyproject.toml's
#                                    ranges allow (in .venv-latest), not the lock
# Anything after the options goes to pytest, e.g. `bash scripts/test.sh -k socket -x` or
# `bash scripts/test.sh -m system`. The tiers and their markers: docs/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
# The suite starts many Python processes (servers, workers, the CLI): let the first one
# cache the project's bytecode for the others (the libraries' is compiled at install).
unset PYTHONDONTWRITEBYTECODE

tier=default venv=.venv
while [ $# -gt 0 ]; do
  case "$1" in
    --all) tier=all ;;
    --latest) venv=.venv-latest ;;
    *) break ;;
  esac
  shift
done
if [ "$venv" = .venv-latest ]; then bash scripts/bootstrap.sh --latest
else bash scripts/bootstrap.sh --dev; fi
bash scripts/services.sh
# System packages some tests need, installed (Debian's packages, quietly) when missing;
# without them those tests skip, except under CI=true where they fail:
# - promtool (package prometheus): deploy/'s alert rules and dashboard (test_deploy_ops.py);
# - chromium: the web pages, driven headless (test_web_pages.py, the browser tier);
# - nginx and haproxy: deploy/'s balancer configs and the node-loss test.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ "$tier" = all ] && { command -v chromium >/dev/null 2>&1 || missing+=(chromium); }
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing ${missing[*]} (Debian packages)"
  apt_log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

echo "== ruff"
"$venv/bin/ruff" check tidings tests benchmarks
echo "== mypy"
"$venv/bin/mypy"

tests_started=$SECONDS
if [ "$tier" = all ]; then
  marks=() ; export HYPOTHESIS_PROFILE=ci
else
  marks=(-m "not system and not browser and not bench and not fuzz")
fi
echo "== pytest, $tier tier (default Socket.IO transport: lean)"
pytest=("$venv/bin/python" -m pytest -n 2 --dist worksteal -q)
if [ $# -gt 0 ]; then
  # A focused run (arguments given): those tests only, no coverage threshold.
  "${pytest[@]}" "${marks[@]}" "$@"
else
  "${pytest[@]}" --cov --cov-report= --durations=15 "${marks[@]}"
  echo "== pytest (the python-socketio transport, same contract tests)"
  TIDINGS_TEST_TRANSPORT=python-socketio "${pytest[@]}" --cov --cov-append \
    --cov-report=term --cov-fail-under=90 "${marks[@]}" \
    tests/test_socket_events.py tests/test_js_client.py tests/test_bench_smoke.py
fi
echo "== $tier tier passed: tests $((SECONDS - tests_started)) s, all $((SECONDS - started)) s"
