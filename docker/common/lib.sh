# Shared shell helpers of the unified container (sourced, not run).

HIVE_BIN=/opt/hive/bin
PGBIN=/usr/lib/postgresql/${PG_MAJOR:-17}/bin
HIVE_CONF=/etc/hive/postgresql.conf
HIVE_STATE_DIR=${HIVE_STATE_DIR:-/tmp/hive}

# Print a message to stderr.
log() { printf '%s\n' "$*" >&2; }

# Read a secret from VAR or VAR_FILE into VAR (file wins only when VAR is empty). Never printed.
read_secret() {
  local var=$1 file_var="${1}_FILE" val
  val=${!var:-}
  if [ -z "$val" ] && [ -n "${!file_var:-}" ]; then
    if [ ! -r "${!file_var}" ]; then
      log "cannot read ${file_var}=${!file_var}: no such readable file (mount the secret readable by uid $(id -u))"
      return 1
    fi
    val=$(cat "${!file_var}")
  fi
  printf -v "$var" '%s' "$val"
  export "${var?}"
  unset "$file_var"
}

# True when PID is alive and not a zombie.
pid_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# PIDs of live postgres server processes (postmasters or backends) in this container.
postgres_pids() {
  local p exe
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
    case $exe in
      "$PGBIN/postgres"|"$PGBIN/postgres (deleted)") pid_alive "$p" && echo "$p" ;;
    esac
  done
}
