#!/usr/bin/env bash
# Runs the healthcheck of every running container that has one, every 2 s, as Docker's engine
# does on its own. Podman schedules healthchecks with systemd timers, and no systemd runs here,
# so without this pump `depends_on: condition: service_healthy` waits forever.
# Usage: health-pump.sh --ensure   (start in the background unless one is already running)
#        health-pump.sh            (run in the foreground)
set -u
PIDFILE=/run/hive-health-pump.pid
if [ "${1:-}" = "--ensure" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then exit 0; fi
  self=$(readlink -f "$0")
  # A copy outside the checkout, run from /: the pump outlives the CI clone that started it.
  install -m 0755 "$self" /run/hive-health-pump.sh
  (cd / && exec nohup setsid /run/hive-health-pump.sh >/var/log/hive-health-pump.log 2>&1 < /dev/null &)
  for _ in $(seq 1 50); do  # the pump writes its own pid (setsid may fork)
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "health-pump: did not start" >&2
  exit 1
fi
echo $$ > "$PIDFILE"
while :; do
  for c in $(podman ps --filter health=starting --filter health=healthy --filter health=unhealthy --format '{{.ID}}' 2>/dev/null | sort -u); do
    timeout 30 podman healthcheck run "$c" >/dev/null 2>&1 &
  done
  wait
  sleep 2
done
