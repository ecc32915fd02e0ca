#!/usr/bin/env bash
# Refreshes uv.lock to the newest versions that pyproject.toml's ranges allow, and the
# pinned uv itself (scripts/uv-requirements.txt) to its newest release. Commit the result
# on its own, after `bash scripts/test.sh` passed on it.
#   bash scripts/lock.sh              everything to its newest allowed version
#   bash scripts/lock.sh NAME [...]   only these packages (uv lock --upgrade-package)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
uv=.venv/.uv/bin/uv
export UV_PYTHON_DOWNLOADS=never
if [ $# -gt 0 ]; then
  args=()
  for name in "$@"; do args+=(--upgrade-package "$name"); done
  "$uv" lock "${args[@]}"
else
  "$uv" lock --upgrade
  { sed -n '1,2p' scripts/uv-requirements.txt
    echo uv | "$uv" pip compile --quiet --no-header --universal --generate-hashes - ; } \
    > scripts/uv-requirements.txt.new
  mv scripts/uv-requirements.txt.new scripts/uv-requirements.txt
fi
git --no-pager diff --stat -- uv.lock scripts/uv-requirements.txt
