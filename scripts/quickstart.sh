#!/usr/bin/env bash
# The README quickstart, end to end on the embedded defaults (no servers needed):
# install, generate the example data, apply the definitions, build a training set and show its head,
# train and register a model, materialize to the online store, then serve and call /predict.
# It installs only what that needs: the core, the serve extra and scikit-learn for the example model
# (no Redis, Kafka or PostgreSQL). `bash scripts/test.sh` adds the dev extra to the same .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "pitstop needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[serve,sklearn]'
export PATH="$PWD/.venv/bin:$PATH"
cd feature_repo
python generate_data.py
pitstop plan
pitstop apply
pitstop training-set --entities data/entity_rows.parquet --service driver_activity --out data/train.parquet --head 5
python train.py
pitstop models list
pitstop materialize-incremental

# every route but /health and /ready needs a key: make one for this demo (a rerun replaces it)
pitstop auth revoke quickstart > /dev/null 2>&1 || true
KEY=$(pitstop auth create-key quickstart --scope predict --scope features:read --scope metrics -q)
pitstop auth list

PORT=${PITSTOP_QUICKSTART_PORT:-8000}
# every /predict is logged; the demo writes the log each second instead of every 10 s
PITSTOP_MONITORING_LOG_FLUSH_SECONDS=1 pitstop serve --workers 2 --bind "127.0.0.1:$PORT" > data/serve.log 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null && break
  kill -0 $SERVER 2>/dev/null || { cat data/serve.log; exit 1; }
  sleep 0.2
done
echo "POST /predict:"
curl -sS -X POST "http://127.0.0.1:$PORT/predict" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"model": "trip_completion", "entities": {"driver_id": [1001, 1002], "customer_id": [2001, 2002]},
       "request_data": {"trip_distance_km": [3.5, 40.0]}}'
echo

# monitoring (docs/monitoring.md): normal traffic, then trips get longer, which shifts the model's
# expected_completion input; pitstop monitor compares the two windows feature by feature
T0=$(date -u +%Y-%m-%dT%H:%M:%S); sleep 1
python send_traffic.py --port "$PORT" --key "$KEY" --requests 150
sleep 1; T1=$(date -u +%Y-%m-%dT%H:%M:%S); sleep 1
python send_traffic.py --port "$PORT" --key "$KEY" --requests 150 --trip-km 40 90 --seed 1
sleep 3  # the workers write their log buffers every second
pitstop monitor drift trip_completion --since "$T1" --reference-since "$T0" --reference-until "$T1" --html data/drift.html
pitstop monitor run --max-runs 1 --metrics-port 0 --since "$T1" --reference-since "$T0" --reference-until "$T1" 2> /dev/null
echo "drift gauges on /metrics:"
curl -sS "http://127.0.0.1:$PORT/metrics" -H "authorization: Bearer $KEY" | grep '^pitstop_feature_drifted' \
  || { echo "no drift gauge on /metrics" >&2; exit 1; }
echo "next: \`pitstop serve\` and open http://127.0.0.1:$PORT/ui (docs/ui.md) with a key made by \`pitstop auth create-key me --scope models:read --scope features:read -q\`"
