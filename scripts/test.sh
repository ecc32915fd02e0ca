#!/usr/bin/env bash
# Runs everything CI runs: install (first time), lint (ruff), types (mypy), and the whole
# test suite against SQLite and PostgreSQL with line coverage of at least 90%.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k socket -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
bash scripts/services.sh
# System packages some tests need, installed (Debian's packages, quietly) when missing;
# without them those tests skip, except under CI=true where they fail:
# - promtool (package prometheus): deploy/'s alert rules and dashboard (test_deploy_ops.py);
# - chromium: the web pages, driven headless (test_web_pages.py);
# - nginx and haproxy: deploy/'s balancer configs and the node-loss test.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
.venv/bin/ruff check tidings tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest (default Socket.IO transport: lean)"
.venv/bin/python -m pytest --cov --cov-report= -q "$@"
echo "== pytest (the python-socketio transport, same contract tests)"
TIDINGS_TEST_TRANSPORT=python-socketio .venv/bin/python -m pytest --cov --cov-append \
  --cov-report=term --cov-fail-under=90 -q "$@" \
  tests/test_socket_events.py tests/test_js_client.py tests/test_bench_smoke.py
