#!/usr/bin/env bash
# The test bed's real S3 server: a single-node Ceph + radosgw container (ho-ceph), started
# idempotently. A running container that answers is reused; a start (of a new or a stopped
# container) bootstraps a fresh cluster (about 20 s; the image is built once, about a minute),
# so no state from an earlier or interrupted run can leave it full or unable to answer. A
# running cluster whose OSD is full or near full is replaced the same way.
#
# Usage: tests/objstore/ceph-setup.sh [start|stop|status|purge]     (default: start)
#   start   build the image if its inputs changed, start or reuse the container, wait for
#           `GET /` to answer 200, make sure the test user exists; prints on stdout:
#             endpoint=http://127.0.0.1:PORT
#             credentials=FILE      (AWS credentials format, mode 0600; never printed)
#   stop    stop the container (the next `start` makes a fresh cluster)
#   status  say whether it runs and answers
#   purge   stop, remove the container and delete the cluster's data
# Environment: HO_CEPH_CACHE (default /var/cache/hive-migrate-objstore), HO_CEPH_PORT (29080),
#   HO_CEPH_NAME (container, ho-ceph), HO_CEPH_IMAGE (localhost/ho-ceph:reef),
#   HO_CEPH_TIMEOUT (seconds to wait for radosgw on each of two tries, 180).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${HO_CEPH_CACHE:-/var/cache/hive-migrate-objstore}
PORT=${HO_CEPH_PORT:-29080}
NAME=${HO_CEPH_NAME:-ho-ceph}
IMAGE=${HO_CEPH_IMAGE:-localhost/ho-ceph:reef}
TIMEOUT=${HO_CEPH_TIMEOUT:-180}
LABEL=org.hive.context-hash
USER_ID=hm-test
ENDPOINT=http://127.0.0.1:$PORT
CRED=$CACHE/credentials
log() { printf 'ceph-setup: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

cmd=${1:-start}
case $cmd in
  start|stop|status|purge) ;;
  -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown command $cmd (try --help)" ;;
esac
command -v podman >/dev/null || die "podman is missing: run tests/engine-setup.sh first"

# One run at a time: two test sessions starting the bed at once must not both bootstrap.
# Commands that leave a process behind (podman run/start: conmon) get fd 9 closed, or the
# lock would outlive this script.
exec 9>"/tmp/$NAME-setup.lock"
flock 9

answers() { curl -fsS --max-time 2 -o /dev/null "$ENDPOINT/" 2>/dev/null; }
state() { podman container inspect --format '{{.State.Status}}' "$NAME" 2>/dev/null || echo missing; }

case $cmd in
  stop)
    if [ "$(state)" = running ]; then podman stop -t 30 "$NAME" >/dev/null; log "stopped $NAME"; fi
    exit 0 ;;
  status)
    s=$(state)
    if [ "$s" = running ] && answers; then echo "$NAME: running, $ENDPOINT answers"; exit 0; fi
    echo "$NAME: $s"; exit 1 ;;
  purge)
    podman rm -f -t 30 "$NAME" >/dev/null 2>&1 || true
    rm -rf "$CACHE/data" "$CRED"
    log "removed $NAME and its data"
    exit 0 ;;
esac

# --- start -------------------------------------------------------------------------------
# The image: rebuilt only when its inputs (this folder's Dockerfile and entry point) change.
hash=$(cd "$HERE" && cat Dockerfile ceph-run.sh | sha256sum | cut -c1-64)
have=$(podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$hash" ]; then
  podman image exists docker.io/library/debian:trixie-slim \
    || die "the base image debian:trixie-slim is missing: run tests/engine-setup.sh first"
  log "building $IMAGE (Ceph from Debian trixie; about a minute)"
  out=$(mktemp)
  if ! podman build --pull=false --format docker --label "$LABEL=$hash" -t "$IMAGE" "$HERE" >"$out" 2>&1; then
    tail -n 30 "$out" >&2; rm -f "$out"; die "building $IMAGE failed"
  fi
  rm -f "$out"
fi

mkdir -p "$CACHE/data"
chmod 0700 "$CACHE" "$CACHE/data"
# The OSD reaps its disk I/O with io_pgetevents, which podman's default seccomp profile
# refuses (EPERM: the OSD aborts in _aio_thread). A copy of that profile with this one call
# allowed, rather than no seccomp filter at all.
seccomp=(--security-opt seccomp=unconfined)
if [ -f /usr/share/containers/seccomp.json ]; then
  python3 - /usr/share/containers/seccomp.json "$CACHE/seccomp.json" <<'PY'
import json, sys
prof = json.load(open(sys.argv[1]))
for rule in prof["syscalls"]:
    if "io_pgetevents" in rule["names"] and rule["action"] != "SCMP_ACT_ALLOW":
        rule["names"].remove("io_pgetevents")
prof["syscalls"] = [r for r in prof["syscalls"] if r["names"]]
prof["syscalls"].append({"names": ["io_pgetevents"], "action": "SCMP_ACT_ALLOW"})
json.dump(prof, open(sys.argv[2] + ".tmp", "w"))
PY
  mv "$CACHE/seccomp.json.tmp" "$CACHE/seccomp.json"
  seccomp=(--security-opt "seccomp=$CACHE/seccomp.json")
fi
s=$(state)
if [ "$s" != missing ]; then
  img=$(podman container inspect --format '{{.ImageName}}' "$NAME" 2>/dev/null || true)
  cur=$(podman container inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$NAME" 2>/dev/null || true)
  if [ "$cur" != "$hash" ] || [ "$img" != "$IMAGE" ]; then
    log "replacing $NAME (its image changed; the data stays)"
    podman rm -f -t 30 "$NAME" >/dev/null
    s=missing
  fi
fi
# A running cluster whose OSD filled up (objects left behind by killed runs) answers GET / but
# refuses writes: replace it rather than fail later in the middle of a test.
if [ "$s" = running ] && podman exec "$NAME" ceph health 2>/dev/null | grep -Eiq 'full osd|OSD_(NEAR)?FULL'; then
  log "replacing $NAME (its OSD is full: $(podman exec "$NAME" ceph health 2>/dev/null | head -c 200))"
  podman rm -f -t 30 "$NAME" >/dev/null
  s=missing
fi
t0=$SECONDS
# launch STATE: run a new container or start the stopped one (each start bootstraps afresh).
launch() {
  case $1 in
    running) ;;
    missing)
      log "starting $NAME on $ENDPOINT"
      podman run -d --name "$NAME" --pull=never --stop-timeout 30 "${seccomp[@]}" \
        -p "127.0.0.1:$PORT:7480" -v "$CACHE/data:/var/lib/ho-ceph" "$IMAGE" >/dev/null 9>&- ;;
    *)
      log "starting $NAME again ($1)"
      podman start "$NAME" >/dev/null 9>&- ;;
  esac
}
launch "$s"
# Two tries: a first start that does not answer in time (a daemon that hung on this machine)
# gets one more, on a new container and a new cluster, before the set-up fails.
for try in 1 2; do
  deadline=$((SECONDS + TIMEOUT))
  until answers; do
    if [ "$(state)" != running ] || [ $SECONDS -ge $deadline ]; then break; fi
    sleep 0.3
  done
  answers && break
  podman logs --tail 30 "$NAME" >&2 || true
  if [ "$try" = 2 ]; then
    die "radosgw on $ENDPOINT did not answer GET / with 200 within ${TIMEOUT}s, twice ($(state)); HINT: see 'podman logs $NAME'"
  fi
  log "radosgw on $ENDPOINT did not answer within ${TIMEOUT}s ($(state)): trying once more on a new cluster"
  podman rm -f -t 30 "$NAME" >/dev/null 2>&1 || true
  launch missing
done
[ $((SECONDS - t0)) -gt 1 ] && log "radosgw answers after $((SECONDS - t0)) s"

# The test user. Its keys are made here, kept in a 0600 file, handed to radosgw-admin through
# the container's stdin-less exec (never on this host's process list for long, never printed).
if [ -s "$CRED" ]; then
  access=$(awk -F' *= *' '$1=="aws_access_key_id"{print $2}' "$CRED")
  secret=$(awk -F' *= *' '$1=="aws_secret_access_key"{print $2}' "$CRED")
else
  access=HO$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40)
fi
if ! podman exec "$NAME" radosgw-admin user info --uid="$USER_ID" 2>/dev/null | grep -q "\"$access\""; then
  podman exec "$NAME" radosgw-admin user rm --uid="$USER_ID" --purge-keys >/dev/null 2>&1 || true
  podman exec -i "$NAME" sh -c 'read -r a; read -r s; exec radosgw-admin user create --uid="$0" --display-name="$0" --access-key="$a" --secret-key="$s"' \
    "$USER_ID" >/dev/null <<KEYS
$access
$secret
KEYS
  log "created the test user $USER_ID"
fi
umask 077
tmp=$(mktemp "$CACHE/credentials.XXXXXX")
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$access" "$secret" > "$tmp"
chmod 0600 "$tmp"
mv "$tmp" "$CRED"
echo "endpoint=$ENDPOINT"
echo "credentials=$CRED"
