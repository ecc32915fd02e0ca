#!/usr/bin/env bash
# Runs everything CI runs: install (first time), lint (ruff), types (mypy), and the whole
# test suite against SQLite and PostgreSQL with line coverage of at least 90%.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k socket -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
bash scripts/services.sh

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
