#!/usr/bin/env bash
# Runs everything CI runs: install (first time), lint (ruff), types (mypy), and the whole
# test suite against SQLite and PostgreSQL with line coverage of at least 90%.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k socket -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
bash scripts/services.sh
# promtool checks deploy/'s alert rules and dashboard (tests/test_deploy_ops.py); Debian
# ships it in the prometheus package. Output only when the install fails.
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "== installing promtool (Debian package prometheus)"
  apt_log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

# The web page tests (tests/test_web_pages.py) drive Debian's chromium headless; without it
# they skip, except under CI=true where they fail. Output only when the install fails.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium (Debian package chromium)"
  apt_log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

# nginx and HAProxy check deploy/'s balancer configs, and nginx fronts the node-loss test
# (tests/test_deploy_files.py, tests/test_node_loss.py); without them those tests skip,
# except under CI=true. Output only when the install fails.
balancers=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || balancers+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || balancers+=(haproxy)
if [ ${#balancers[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing ${balancers[*]} (Debian packages)"
  apt_log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${balancers[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

echo "== ruff"
.venv/bin/ruff check tidings tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest (default Socket.IO transport: lean)"
.venv/bin/python -m pytest --cov --cov-report= -q "$@"
echo "== pytest (the python-socketio transport, same contract tests)"
TIDINGS_TEST_TRANSPORT=python-socketio .venv/bin/python -m pytest --cov --cov-append \
  --cov-report=term --cov-fail-under=90 -q "$@" \
  tests/test_socket_events.py tests/test_js_client.py tests/test_bench_smoke.py
