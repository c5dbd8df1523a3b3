#!/bin/bash
# Entrypoint of the unified hive container (runs under tini, as 1000:1000 by default or any uid).
# 1. Reads passwords from env or *_FILE secrets (never printed).
# 2. Turns HIVE_PG_SETTINGS (postgres command-line settings: -c NAME=VALUE ..., shell quoting)
#    into the argument list pg-run.sh gives postgres; refuses settings it cannot accept.
# 3. Refuses a data directory of another PostgreSQL major with one clear message (and then
#    waits, unhealthy, instead of crash-looping; HIVE_ON_REFUSE=exit makes it exit 1 instead).
# 4. Initialises an empty data directory once (initdb into a temporary directory, create the
#    role, database and vector extension as the superuser, then rename into place), or adopts
#    an existing PostgreSQL 17 directory (e.g. from the split stack) unchanged.
# 5. Execs supervisord (postgres, api, health-monitor).
set -euo pipefail
. /opt/hive/bin/lib.sh
# Our own lines (and initdb's) go to docker logs prefixed "entrypoint | "; supervisord gets
# the original stdout/stderr back below.
exec 3>&1 4>&2
exec > >(exec "$HIVE_BIN/prefix.sh" entrypoint) 2>&1

mkdir -p "$HIVE_STATE_DIR"
rm -f "$HIVE_STATE_DIR/refused" "$HIVE_STATE_DIR/pg-settings"

# Run initdb (and everything else) under a uid without a passwd entry: nss_wrapper.
if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  nss=$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n1 || true)
  if [ -n "$nss" ]; then
    printf 'hive:x:%s:%s:hive:/var/lib/postgresql:/bin/sh\n' "$(id -u)" "$(id -g)" > "$HIVE_STATE_DIR/passwd"
    printf 'hive:x:%s:\n' "$(id -g)" > "$HIVE_STATE_DIR/group"
    export LD_PRELOAD=$nss NSS_WRAPPER_PASSWD=$HIVE_STATE_DIR/passwd NSS_WRAPPER_GROUP=$HIVE_STATE_DIR/group
  fi
fi
export HOME=${HOME:-/var/lib/postgresql}
[ -w "$HOME" ] || export HOME=$HIVE_STATE_DIR

profile=${HIVE_PROFILE:-genie}
case $profile in
  agent) def_user=agent def_db=hive_agent def_port=38886 ;;
  *)     def_user=hive  def_db=hive_genie def_port=48886 ;;
esac
export HIVE_DB_USER=${HIVE_DB_USER:-$def_user}
export HIVE_DB_NAME=${HIVE_DB_NAME:-$def_db}
export HIVE_API_PORT=${HIVE_API_PORT:-$def_port}
export HIVE_APP_MODULE=${HIVE_APP_MODULE:-hive_app.main:app}
read_secret HIVE_DB_PASSWORD
read_secret HIVE_BACKUP_PASSWORD

# Park (or exit) after a refusal: one clear message, no crash loop.
refuse() {
  # straight to the original stderr: with HIVE_ON_REFUSE=exit the prefixer may not get to run
  printf 'entrypoint | REFUSED: %s\n' "$*" >&4
  printf '%s\n' "$*" > "$HIVE_STATE_DIR/refused"
  if [ "${HIVE_ON_REFUSE:-wait}" = exit ]; then exit 1; fi
  log "the container stays up but unhealthy and does not start PostgreSQL; fix the data directory, then recreate the container"
  exec sleep infinity
}

if [ "$(id -u)" = 0 ]; then
  refuse "running as root: PostgreSQL refuses to run as root; run the container as the owner of the data directory (default user 1000:1000, or any other uid via user:)"
fi
# Settings for postgres as on its command line (what hive-migrate carries from a split stack's
# `command: postgres -c ...`): checked here once, stored NUL-separated for pg-run.sh. Command-line
# settings take precedence over postgresql.conf and ALTER SYSTEM, as they did in the split stack.
if [ -n "${HIVE_PG_SETTINGS:-}" ]; then
  if ! msg=$(python3 - "$HIVE_STATE_DIR/pg-settings" 2>&1 <<'PY'
import os, re, shlex, sys
own = {"config_file", "hba_file", "ident_file", "data_directory", "port", "listen_addresses",
       "unix_socket_directories", "external_pid_file"}
try:
    words = shlex.split(os.environ["HIVE_PG_SETTINGS"])
except ValueError as exc:
    sys.exit(f"HIVE_PG_SETTINGS cannot be parsed ({exc})")
args, shown, i = [], [], 0
while i < len(words):
    w = words[i]
    if w == "-c" and i + 1 < len(words):
        kv, i = words[i + 1], i + 2
    elif w.startswith("-c") and len(w) > 2:
        kv, i = w[2:], i + 1
    elif w.startswith("--") and len(w) > 2:
        kv, i = w[2:], i + 1
    else:
        sys.exit(f"HIVE_PG_SETTINGS: \"{w}\" is not -c NAME=VALUE")
    name, eq, value = kv.partition("=")
    name = name.replace("-", "_").lower()
    if not eq or not re.fullmatch(r"[a-z_][a-z0-9_.]*", name) or "\n" in value:
        sys.exit(f"HIVE_PG_SETTINGS: \"{kv}\" is not NAME=VALUE")
    if name in own:
        sys.exit(f"HIVE_PG_SETTINGS: {name} is set by the unified container itself")
    args += ["-c", f"{name}={value}"]
    shown.append(f"{name}={value}")
with open(sys.argv[1], "wb") as f:
    f.write(b"".join(a.encode() + b"\0" for a in args))
print("postgres settings from HIVE_PG_SETTINGS: " + ", ".join(shown))
PY
  ); then
    refuse "${msg:-HIVE_PG_SETTINGS cannot be read}"
  fi
  log "$msg"
fi

parent=$(dirname "$PGDATA")

if [ -f "$PGDATA/PG_VERSION" ]; then
  have=$(cat "$PGDATA/PG_VERSION")
  if [ "$have" != "$PG_MAJOR" ]; then
    refuse "data directory $PGDATA is from PostgreSQL $have, this image runs PostgreSQL $PG_MAJOR; it was left untouched (upgrade it with pg_upgrade, or use an image of PostgreSQL $have)"
  fi
  owner=$(stat -c %u "$PGDATA")
  if [ "$owner" != "$(id -u)" ]; then
    refuse "data directory $PGDATA is owned by uid $owner but the container runs as uid $(id -u): chown -R $(id -u):$(id -g) the host directory, or run the container with user $owner"
  fi
  log "using existing PostgreSQL $have data directory $PGDATA (not re-initialised)"
elif [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
  refuse "$PGDATA is not empty but holds no PG_VERSION: not a PostgreSQL data directory, left untouched"
else
  # First start: initialise into a temporary directory and rename it into place when complete,
  # so an interrupted initialisation is simply redone.
  if [ -z "$HIVE_DB_PASSWORD" ]; then
    refuse "HIVE_DB_PASSWORD (or HIVE_DB_PASSWORD_FILE) is required to initialise a new data directory"
  fi
  if [ ! -d "$parent" ] || [ ! -w "$parent" ]; then
    refuse "$parent is not a writable directory for uid $(id -u) gid $(id -g): mount a data folder owned by that uid at $parent"
  fi
  tmp=$parent/.pgdata-init
  rm -rf "$tmp"
  log "initialising a new PostgreSQL $PG_MAJOR data directory (role $HIVE_DB_USER, database $HIVE_DB_NAME)"
  if ! "$PGBIN/initdb" -D "$tmp" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null; then
    refuse "initdb failed (see the lines above)"
  fi
  sockdir=$HIVE_STATE_DIR/init-socket
  mkdir -p "$sockdir"
  # temporary server on a private socket only: nothing can connect over TCP during init
  if ! "$PGBIN/pg_ctl" -D "$tmp" -w -t 60 -l "$HIVE_STATE_DIR/init.log" \
      -o "-c config_file=$HIVE_CONF -c listen_addresses= -c unix_socket_directories=$sockdir" start >/dev/null; then
    cat "$HIVE_STATE_DIR/init.log" >&2 || true
    refuse "the temporary server for initialisation did not start (log above)"
  fi
  if ! PGHOST=$sockdir python3 "$HIVE_BIN/dbsetup.py" init; then
    "$PGBIN/pg_ctl" -D "$tmp" -m fast -w stop >/dev/null || true
    refuse "initialisation failed (see the lines above); $tmp left for inspection"
  fi
  "$PGBIN/pg_ctl" -D "$tmp" -m fast -w -t 60 stop >/dev/null
  if [ -d "$PGDATA" ]; then rmdir "$PGDATA"; fi
  mv "$tmp" "$PGDATA"
  sync -f "$parent" 2>/dev/null || true
  log "data directory initialised"
fi

# The app's connection string, unless given: over TCP to the local server.
if [ -z "${HIVE_DATABASE_URL:-}" ]; then
  enc=$(python3 -c 'import os, urllib.parse as u; print(u.quote(os.environ["HIVE_DB_PASSWORD"], safe=""))')
  export HIVE_DATABASE_URL="postgresql+psycopg://${HIVE_DB_USER}:${enc}@127.0.0.1:${PGPORT:-5432}/${HIVE_DB_NAME}"
fi

exec 1>&3 2>&4 3>&- 4>&-
exec /usr/bin/supervisord -n -c /etc/hive/supervisord.conf
