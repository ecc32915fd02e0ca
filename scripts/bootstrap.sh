#!/usr/bin/env bash
# Creates .venv (once) and installs Tidings into it from the lock (uv.lock): exactly the
# versions the suite was last run with, checked against their hashes.
#   bash scripts/bootstrap.sh           the service (leaves test tools already there alone)
#   bash scripts/bootstrap.sh --dev     the service and the test tools, nothing else
#   bash scripts/bootstrap.sh --latest  the newest versions pyproject.toml's ranges allow,
#                                       into .venv-latest (see scripts/test.sh --latest)
#   ... --extra NAME                    also an optional part of pyproject.toml, with any of
#                                       the above (repeatable): `--extra client` for the
#                                       Python client's live inbox, `--extra bench` for the
#                                       load tool (`--dev` has both)
# Re-running is cheap: uv only acts on what differs from the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Tidings needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
usage() {
  echo "usage: bash scripts/bootstrap.sh [--dev | --latest] [--extra NAME]..." >&2
  exit 2
}
mode=""
extras=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dev | --latest) [ -z "$mode" ] || usage; mode=$1 ;;
    --extra) [ $# -ge 2 ] && [ -n "$2" ] || usage; extras+=(--extra "$2"); shift ;;
    *) usage ;;
  esac
  shift
done
venv=.venv
[ "$mode" = "--latest" ] && venv=.venv-latest
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"

# uv, pinned with hashes in scripts/uv-requirements.txt, lives beside the venv's packages
# (not among them), so a sync never removes it.
uv="$venv/.uv/bin/uv"
want=$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' scripts/uv-requirements.txt)
if [ ! -x "$uv" ] || [ "$("$uv" --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
  log=$(mktemp)
  if ! "$venv/bin/python" -m pip install --quiet --require-hashes --no-deps \
      --target "$venv/.uv" --upgrade -r scripts/uv-requirements.txt >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "Installing uv $want failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

# Bytecode compiled at install: an environment with PYTHONDONTWRITEBYTECODE set would
# otherwise compile every imported library again in each process it starts (seconds each).
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$venv" VIRTUAL_ENV="$PWD/$venv" \
  UV_COMPILE_BYTECODE=1
# An extra the project does not have fails here, naming it (uv: "Extra `x` is not defined").
case "$mode" in
  --dev) "$uv" sync --quiet --frozen --extra dev ${extras[@]+"${extras[@]}"} ;;
  --latest)
    names=dev
    for ((i = 1; i < ${#extras[@]}; i += 2)); do names+=",${extras[i]}"; done
    "$uv" pip install --quiet --upgrade --python "$venv/bin/python" -e ".[$names]" ;;
  *) "$uv" sync --quiet --frozen --inexact ${extras[@]+"${extras[@]}"} ;;
esac
