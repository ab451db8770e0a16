#!/usr/bin/env bash
# Create (once) the isolated virtualenv that the drift benchmark (bench/drift.py) uses to run
# Evidently's data-drift preset.
#
#   bash bench/setup_evidently.sh          # venv at bench/.evidently-venv
#   EVIDENTLY_VENV=/some/dir bash bench/setup_evidently.sh
#
# Idempotent: an existing venv that already imports the pinned Evidently with pandas and pyarrow is
# left alone. Installs from PyPI only. Prints the venv's python on the last line of stdout.
#
# pandas is held below 3: Evidently 0.7.x declares pandas>=1.3.5 with no upper bound, but imports
# pandas.core.dtypes.common.infer_dtype_from_object, which pandas 3.0 removed (ImportError on
# ``import evidently``).
set -euo pipefail

EVIDENTLY_VERSION="0.7.23"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${EVIDENTLY_VENV:-$here/.evidently-venv}"
python_bin="${PYTHON:-python3}"

ready() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$EVIDENTLY_VERSION" <<'PY' 2>/dev/null
import sys
import pandas, pyarrow  # noqa: F401  (the benchmark reads the Parquet files with pandas)
import evidently
from evidently import Report  # noqa: F401  (the 0.7 API)
from evidently.presets import DataDriftPreset  # noqa: F401
sys.exit(0 if evidently.__version__ == sys.argv[1] else 1)
PY
}

if ! ready; then
    echo "setup_evidently: installing evidently==$EVIDENTLY_VERSION into $venv" >&2
    [ -x "$venv/bin/python" ] || "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet "evidently==$EVIDENTLY_VERSION" "pandas<3" pyarrow >&2
    ready || { echo "setup_evidently: evidently $EVIDENTLY_VERSION does not import in $venv" >&2; exit 1; }
fi
echo "$venv/bin/python"
