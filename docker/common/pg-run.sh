#!/bin/bash
# Runs the postmaster for supervisord (program "postgres"), with:
# - cleanup first: a postmaster killed with SIGKILL leaves its backends running, holding the
#   shared memory block, and the next start fails ("pre-existing shared memory block is still
#   in use"); any postgres process still alive here is such an orphan (or a stray postmaster
#   whose wrapper died): SIGQUIT, then SIGKILL, and wait until they are gone. A stale
#   postmaster.pid naming a live non-postgres process (pid reuse in a new container) is removed.
# - the settings of HIVE_PG_SETTINGS as command-line options (entrypoint.sh stores them);
# - stop escalation: on TERM/INT, SIGINT (fast shutdown) to the postmaster, then SIGQUIT
#   (immediate) after HIVE_PG_FAST_STOP_SECS, then SIGKILL; exit with the postmaster's status.
set -u
. /opt/hive/bin/lib.sh
exec > >(exec "$HIVE_BIN/prefix.sh" postgres) 2>&1

FAST=${HIVE_PG_FAST_STOP_SECS:-15}
QUIT=${HIVE_PG_QUIT_STOP_SECS:-4}

# Wait until none of the given pids is alive, for at most $1 seconds; true when all are gone.
wait_gone() {
  local secs=$1; shift
  local end=$((SECONDS + secs)) p alive
  while :; do
    alive=0
    for p in "$@"; do pid_alive "$p" && alive=1; done
    [ $alive = 0 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.1
  done
}

cleanup_orphans() {
  local pids old
  # a live postmaster whose wrapper died (e.g. SIGKILLed): fast shutdown first, so it ends clean
  old=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null || true)
  if [ -n "$old" ] && pid_alive "$old" && [ "$(readlink "/proc/$old/exe" 2>/dev/null)" = "$PGBIN/postgres" ]; then
    echo "pg-run: a postmaster ($old) is still running without its wrapper; fast shutdown"
    kill -INT "$old" 2>/dev/null
    wait_gone "$FAST" "$old" || echo "pg-run: postmaster $old did not stop in ${FAST}s"
  fi
  pids=$(postgres_pids | tr '\n' ' ')
  if [ -n "${pids// /}" ]; then
    echo "pg-run: found orphaned postgres processes ($pids) from a killed postmaster; stopping them"
    kill -QUIT $pids 2>/dev/null
    if ! wait_gone 5 $pids; then
      echo "pg-run: orphans still alive after SIGQUIT; sending SIGKILL"
      kill -KILL $pids 2>/dev/null
      wait_gone 10 $pids || echo "pg-run: WARNING: processes $pids did not exit"
    fi
  fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    old=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null)
    if [ -n "$old" ] && pid_alive "$old" && \
       [ "$(readlink "/proc/$old/exe" 2>/dev/null)" != "$PGBIN/postgres" ]; then
      echo "pg-run: removing stale postmaster.pid (pid $old is now another process)"
      rm -f "$PGDATA/postmaster.pid"
    fi
  fi
}

stopping=0
trap 'stopping=1' TERM INT
cleanup_orphans
[ $stopping = 1 ] && exit 0

# settings from HIVE_PG_SETTINGS (checked and stored by entrypoint.sh)
extra=()
if [ -s "$HIVE_STATE_DIR/pg-settings" ]; then mapfile -d '' -t extra < "$HIVE_STATE_DIR/pg-settings"; fi
"$PGBIN/postgres" -D "$PGDATA" -c config_file="$HIVE_CONF" "${extra[@]}" &
pm=$!
while :; do
  wait "$pm"; rc=$?
  [ $stopping = 1 ] && break
  if ! pid_alive "$pm"; then
    echo "pg-run: postmaster exited with status $rc"
    exit "$rc"
  fi
done

echo "pg-run: stopping postmaster $pm (fast shutdown)"
kill -INT "$pm" 2>/dev/null
if ! wait_gone "$FAST" "$pm"; then
  echo "pg-run: no clean shutdown after ${FAST}s; immediate shutdown (SIGQUIT)"
  kill -QUIT "$pm" 2>/dev/null
  if ! wait_gone "$QUIT" "$pm"; then
    echo "pg-run: still running after ${QUIT}s; SIGKILL"
    kill -KILL "$pm" 2>/dev/null
  fi
fi
wait "$pm"; rc=$?
echo "pg-run: postmaster exited with status $rc"
exit "$rc"
