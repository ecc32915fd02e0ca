#!/usr/bin/env bash
# Installs (first time) and runs Tidings on its embedded default: a SQLite file in the
# working directory and in-process pub/sub. Arguments go to `tidings serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/tidings serve "$@"
