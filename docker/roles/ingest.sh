#!/bin/sh
# Role "ingest": consume the stream views' Kafka topics until SIGTERM (drains, then commits).
# Metrics on PITSTOP_INGEST_METRICS_PORT (default 9108) at /metrics.
set -eu
exec pitstop ingest "$@"
