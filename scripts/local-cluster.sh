#!/usr/bin/env bash
# A distributed Airflow on this machine, without Docker (CeleryExecutor, PostgreSQL, Redis,
# scheduler, dag-processor, api-server, two triggerers, a Celery worker, the Bedrock emulator):
#
#   scripts/local-cluster.sh up       # returns when every component is healthy
#   scripts/local-cluster.sh status   # each component's health and pid
#   scripts/local-cluster.sh down     # stops exactly the processes `up` started
#
# Settings: deploy/cluster.env (plus $CLUSTER_ENV_OVERRIDE, a second env file, if set).
# State (pids, logs, Airflow home): $CLUSTER_STATE_DIR, default .cluster/ in the repository.
# Needs PostgreSQL and Redis running where deploy/cluster.env says (.ci/run starts them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
exec "$PY" "$ROOT/scripts/local_cluster.py" "$@"
