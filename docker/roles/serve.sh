#!/bin/sh
# Role "serve": gunicorn with PITSTOP_SERVING_WORKERS uvicorn workers (default 2) on 0.0.0.0:$PORT (default 8000).
# Health: GET /health (alive), GET /ready (registry, online store and models reachable).
set -eu
exec pitstop serve --bind "0.0.0.0:${PORT:-8000}" --workers "${PITSTOP_SERVING_WORKERS:-2}" "$@"
