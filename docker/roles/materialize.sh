#!/bin/sh
# Role "materialize" (one-shot): each view from its watermark up to now, or to the END given as argument.
# Use it from a k8s CronJob or an Airflow task instead of the "schedule" role.
set -eu
exec pitstop materialize-incremental "$@"
