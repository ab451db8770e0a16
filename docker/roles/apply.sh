#!/bin/sh
# Role "apply" (one-shot): register the repo's definitions; the other roles start after it succeeded.
# With EXAMPLE=1 (the compose quickstart) it first writes the example repo's sample data when there is
# none, and after applying trains and registers the example model when no model is registered yet.
set -eu
cd "${PITSTOP_REPO:-/app/repo}"
if [ "${EXAMPLE:-0}" = "1" ] && [ -f generate_data.py ] && [ ! -e data/entity_rows.parquet ]; then
  python generate_data.py
fi
pitstop apply "$@"
if [ "${EXAMPLE:-0}" = "1" ] && [ -f train.py ] && [ "$(pitstop --json models list)" = "[]" ]; then
  python train.py
fi
