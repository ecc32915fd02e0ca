#!/usr/bin/env bash
# Creates .venv (once) and installs Tidings into it, with the test tools when asked (--dev).
# Re-running is cheap: pip only acts when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Tidings needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
stamp=".venv/.installed${extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing Tidings${extra} into .venv ..."
  log=.venv/install.log
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
         .venv/bin/python -m pip install --quiet -e ".${extra}"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "Installing failed (full log: $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
