#!/usr/bin/env bash
# Create (once) the isolated virtualenv that the benchmark uses to run Feast's DuckDB offline store
# and its Redis online store.
#
#   bash bench/setup_feast.sh          # venv at bench/.feast-venv
#   FEAST_VENV=/some/dir bash bench/setup_feast.sh
#   bash bench/setup_feast.sh --spark  # also Feast's spark extra (pyspark), for bench/spark_engine.py
#
# Idempotent: an existing venv that already imports the pinned Feast with its duckdb/ibis and redis
# extras is left alone (an older venv with only the duckdb extra gets the redis one added).
# Installs from PyPI only. Prints the venv's python on the last line of stdout.
set -euo pipefail

FEAST_VERSION="0.67.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${FEAST_VENV:-$here/.feast-venv}"
python_bin="${PYTHON:-python3}"
extras="duckdb,redis"
check_spark=""
if [ "${1:-}" = "--spark" ]; then
    extras="duckdb,redis,spark"
    check_spark=1
fi

ready() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$FEAST_VERSION" "$check_spark" <<'PY' 2>/dev/null
import sys
import duckdb, ibis, psutil, redis  # noqa: F401  (duckdb offline store: ibis[duckdb]; online: redis)
import feast
if sys.argv[2]:
    import pyspark  # noqa: F401  (--spark: Feast's Spark offline store)
sys.exit(0 if feast.__version__ == sys.argv[1] else 1)
PY
}

if ! ready; then
    echo "setup_feast: installing feast[$extras]==$FEAST_VERSION into $venv" >&2
    [ -x "$venv/bin/python" ] || "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet "feast[$extras]==$FEAST_VERSION" psutil >&2
    ready || { echo "setup_feast: feast $FEAST_VERSION does not import in $venv" >&2; exit 1; }
fi
echo "$venv/bin/python"
