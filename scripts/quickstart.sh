#!/usr/bin/env bash
# The README quickstart, end to end on the embedded defaults (no servers needed):
# install, generate the example data, apply the definitions, build a training set and show its head,
# then materialize to the online store and read one entity's features back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cd feature_repo
python generate_data.py
pitstop plan
pitstop apply
pitstop training-set --entities data/entity_rows.parquet --service driver_activity --out data/train.parquet --head 5
pitstop materialize-incremental
python - <<'PY'
from pitstop import FeatureStore

online = FeatureStore(".").get_online_features(
    feature_service="driver_activity",
    entity_rows=[{"driver_id": 1001, "customer_id": 2001, "trip_distance_km": 12.5}],
)
print("online features:", online.to_dict())
PY
