#!/bin/sh
# Role "schedule": materialize-incremental on MATERIALIZE_CRON (UTC; default every 15 minutes) until SIGTERM.
# Several schedulers sharing a registry never overlap: each run takes the registry's "materialize" lock.
set -eu
exec pitstop schedule --cron "${MATERIALIZE_CRON:-*/15 * * * *}" "$@"
