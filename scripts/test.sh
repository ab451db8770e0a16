#!/usr/bin/env bash
# Runs the whole test suite (unit + integration) after installing what it needs.
# Extra arguments go to pytest. "No tests collected" counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
