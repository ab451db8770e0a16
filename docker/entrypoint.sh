#!/bin/sh
# Container entrypoint. The first argument names a role, whose script is in roles/ beside this file:
#   serve        HTTP scoring service (gunicorn + uvicorn workers); stateless, scale with replicas
#   ingest       Kafka stream ingester; run one per few partitions (same kafka.group_id)
#   schedule     long-running materialization scheduler (cron; a registry lock keeps runs exclusive)
#   monitor      long-running drift checks of the served models (cron), Prometheus gauges on :9109
#   apply        one-shot: register the repo's definitions
#   materialize  one-shot: materialize-incremental up to now (for k8s CronJobs, Airflow, ...)
# Further arguments go to that role's pitstop command. Anything else runs as a command, e.g.
#   docker run pitstop pitstop models list
set -eu
role="${1:-serve}"
script="$(dirname "$0")/roles/${role}.sh"
if [ -f "$script" ]; then
  if [ "$#" -gt 0 ]; then shift; fi
  exec "$script" "$@"
fi
exec "$@"
