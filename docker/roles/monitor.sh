#!/bin/sh
# Role "monitor": drift of every served model on MONITOR_CRON (UTC; default every 10 minutes) over the
# last MONITOR_WINDOW (default 1h), as Prometheus gauges on :9109/metrics; prunes and compacts the
# prediction log. Several monitors sharing a registry never overlap (the registry's "monitor" lock).
set -eu
exec pitstop monitor run --cron "${MONITOR_CRON:-*/10 * * * *}" --since "${MONITOR_WINDOW:-1h}" "$@"
