#!/bin/bash
# Runs the API for supervisord (program "api"): waits until PostgreSQL accepts connections
# over TCP (a supervisord priority does not wait), applies the per-start database setup
# (backup role, vector extension; idempotent), then execs uvicorn with HIVE_APP_MODULE on
# HIVE_API_PORT.
set -u
. /opt/hive/bin/lib.sh
exec > >(exec "$HIVE_BIN/prefix.sh" api) 2>&1

n=0
until "$PGBIN/pg_isready" -q -U "$HIVE_DB_USER" -d "$HIVE_DB_NAME" -h 127.0.0.1 -p "${PGPORT:-5432}" -t 2; do
  n=$((n + 1))
  [ $((n % 50)) = 1 ] && echo "api-run: waiting for PostgreSQL on 127.0.0.1:${PGPORT:-5432}"
  sleep 0.2
done
PGHOST=/var/run/postgresql python3 "$HIVE_BIN/dbsetup.py" start || echo "api-run: per-start setup failed (continuing)"

args=(--host "${HIVE_API_HOST:-0.0.0.0}" --port "$HIVE_API_PORT" --timeout-graceful-shutdown 3)
[ "${HIVE_API_ACCESS_LOG:-0}" = 1 ] || args+=(--no-access-log)
echo "api-run: starting $HIVE_APP_MODULE on port $HIVE_API_PORT"
exec python3 -m uvicorn "$HIVE_APP_MODULE" "${args[@]}"
