#!/usr/bin/env bash
# The README quickstart, end to end on the embedded defaults (no servers needed):
# install, generate the example data, apply the definitions, build a training set and show its head.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cd feature_repo
python generate_data.py
pitstop plan
pitstop apply
pitstop training-set --entities data/entity_rows.parquet --service driver_activity --out data/train.parquet --head 5
