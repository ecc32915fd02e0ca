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
  # (grep drops this machine's notes about missing local mirrors; errors still show)
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --quiet -e ".${extra}" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import tidings, fastapi, socketio" # fail here if the install did
  touch "$stamp"
fi
