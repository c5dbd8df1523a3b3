#!/bin/bash
# Health monitor (supervisord program "health-monitor"): every HIVE_MONITOR_INTERVAL seconds
# runs the container healthcheck, records health transitions (a log line and the state file
# $HIVE_STATE_DIR/health.json), and restarts a wedged API: when PostgreSQL is up but the API
# health endpoint times out HIVE_MONITOR_WEDGED times in a row -> supervisorctl restart api.
set -u
. /opt/hive/bin/lib.sh
exec > >(exec "$HIVE_BIN/prefix.sh" health-monitor) 2>&1

INTERVAL=${HIVE_MONITOR_INTERVAL:-3}
WEDGED=${HIVE_MONITOR_WEDGED:-3}
STATE=$HIVE_STATE_DIR/health.json
mkdir -p "$HIVE_STATE_DIR"
state=starting since=$(date -u +%FT%TZ) timeouts=0 started=$SECONDS
GRACE=${HIVE_MONITOR_GRACE:-60}
trap 'exit 0' TERM INT

write_state() {
  local reason=${2//\"/\'}
  printf '{"state":"%s","since":"%s","reason":"%s","api_restarts":%d}\n' \
    "$1" "$since" "$reason" "${restarts:-0}" > "$STATE.tmp" && mv "$STATE.tmp" "$STATE"
}
restarts=0
write_state "$state" "container started"
while :; do
  out=$(/usr/local/bin/hive-healthcheck 2>&1); rc=$?
  if [ $rc = 0 ]; then new=healthy timeouts=0
  else
    new=unhealthy
    case $out in
      api:*"timed out"*|api:*timeout*) timeouts=$((timeouts + 1)) ;;
      *) timeouts=0 ;;
    esac
  fi
  # Stay "starting" (not "unhealthy") until the first success or the grace period ends.
  if [ "$state" = starting ] && [ "$new" = unhealthy ] && [ $((SECONDS - started)) -lt "$GRACE" ]; then
    new=starting
  fi
  if [ "$new" != "$state" ]; then
    since=$(date -u +%FT%TZ)
    echo "health: $state -> $new ($out)"
    state=$new
  fi
  write_state "$state" "$out"
  if [ $timeouts -ge "$WEDGED" ]; then
    echo "api health timed out $timeouts times in a row; restarting the api"
    restarts=$((restarts + 1))
    supervisorctl -c /etc/hive/supervisord.conf restart api 2>&1 | sed 's/^/supervisorctl: /'
    timeouts=0
  fi
  sleep "$INTERVAL" & wait $!
done
