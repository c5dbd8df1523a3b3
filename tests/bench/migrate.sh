#!/usr/bin/env bash
# Migration benchmark (not part of `make test`): on a split stack filled with the generated
# data set (default 1GB), measures in one run
#   1. tar -cf - DIR | zstd -1 -T2          (the reference snapshot throughput)
#   2. hive-migrate's snapshot              (inside `hive-migrate up`: archive + manifest + SHA-256)
#   3. pgBackRest full backup, offline      (Debian's pgbackrest; compress-type zst level 1,
#                                            process-max 2; may not know the PostgreSQL major)
#   4. the downtime of `hive-migrate up`    (stop of the split stack begun -> unified API healthy;
#                                            with the time the data was verified, and once more
#                                            with --no-precopy)
#   5. the downtime of `hive-migrate rollback` (live, the default: unified stopped -> split
#      healthy and verified), with and without the safety snapshot, and the wall time of
#      `rollback --to-snapshot` (each after a fresh `up`)
# with peak memory (GNU time -v, max RSS) for each, and prints a markdown block for
# docs/benchmarks.md ("Migration"). With BENCH_JSON=FILE set, also writes the results as one
# JSON object to FILE (the contract of the multi-size harness; seconds as numbers, null when
# not measured): size, bytes, up_downtime_seconds, up_step_seconds{step: s} (as `up --json`
# reports them), fingerprint_during_health, rollback_downtime_seconds (live, with the safety
# snapshot), rollback_step_seconds{step: s} (as `rollback --json` reports them),
# rollback_no_safety_downtime_seconds, rollback_to_snapshot_seconds (wall), up_verified_seconds
# (stop begun -> data verified equal), up_no_precopy_downtime_seconds / _verified_seconds /
# _step_seconds (one more up with --no-precopy in the same run), snapshot_seconds
# (with the pre-copy: the delta's, in the downtime), precopy (the journal's state: "merged" or
# "off"), precopy_seconds / delta_seconds / merge_seconds (also in up_step_seconds, with
# precopy_verify and delta_verify),
# tar_zstd_seconds, pgbackrest_seconds, peak_rss_mb (max over up and rollback),
# peak_rss_mb_by_run{tar_zstd, up, rollback}, load_avg_start/end (1-min load: shared box).
# Usage: tests/bench/migrate.sh [--size 200MB|1GB|2GB] [--keep]
# Uses the names hu-bench-* and ports 24896 (API) / 24542 (PostgreSQL); needs root, the engine
# (tests/engine-setup.sh), the split images and the unified image.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
SIZE=1GB KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "migrate.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
API_PORT=24896 PG_PORT=24542 PREFIX=hu-bench- UNIFIED=hu-bench-hive-agent-unified
WORK=$(mktemp -d /var/tmp/hu-bench.XXXXXX)
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
STACK=$WORK/hu-bench-stack
log() { printf 'bench: %s\n' "$*" >&2; }
cleanup() {
  docker stop -t 30 "$UNIFIED" >/dev/null 2>&1 || true
  docker rm -f "$UNIFIED" >/dev/null 2>&1 || true
  [ -f "$STACK/.env" ] && docker compose --project-directory "$STACK" down -t 30 >/dev/null 2>&1 || true
  [ $KEEP = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
# max RSS in MB and wall seconds of a command (GNU time)
measure() { # name cmd...
  local name=$1; shift
  /usr/bin/time -v -o "$WORK/$name.time" "$@"
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/$name.time")
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$WORK/$name.time")
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / s / 1e6 : 0) }'; }

"$ROOT/fixtures/split/build-images.sh" 17 api >/dev/null
"$ROOT/docker/build-image.sh" >/dev/null 2>&1
make -s -C "$ROOT" hive-migrate
HIVE_NAME_PREFIX=$PREFIX HIVE_AGENT_API_PORT=$API_PORT HIVE_AGENT_PG_PORT=$PG_PORT \
  "$ROOT/fixtures/split/new-stack.sh" "$STACK" --profile agent >/dev/null
"$ROOT/tests/health-pump.sh" --ensure >/dev/null 2>&1 || true
docker compose --project-directory "$STACK" up -d >/dev/null 2>&1
PW=$(grep '^AGENT_DB_PASSWORD=' "$STACK/.env" | cut -d= -f2)
for _ in $(seq 1 120); do
  PGPASSWORD=$PW /usr/bin/python3 -c "import psycopg; psycopg.connect('host=127.0.0.1 port=$PG_PORT user=agent dbname=hive_agent').close()" 2>/dev/null && break
  sleep 1
done
log "filling $SIZE (fixtures/generate-data.py)"
PGPASSWORD=$PW /usr/bin/python3 "$ROOT/fixtures/generate-data.py" --quiet --json \
  --dsn "host=127.0.0.1 port=$PG_PORT user=agent dbname=hive_agent" --size "$SIZE" > "$WORK/fill.json"
DATA=$STACK/data/postgres-agent

# 1-3 on the stopped cluster (same directory, page cache warmed by the first read)
docker compose --project-directory "$STACK" stop -t 30 >/dev/null 2>&1
BYTES=$(du -sb "$DATA" | cut -f1)
cat "$DATA"/pgdata/base/*/* > /dev/null 2>&1 || true
log "tar | zstd -1 -T2 of $BYTES bytes"
measure tarzstd sh -c "tar -C '$DATA' -cf - . | zstd -q -1 -T2 -o '$WORK/ref.tar.zst'"
T_TAR=$WALL R_TAR=$RSS S_TAR=$(stat -c %s "$WORK/ref.tar.zst")
rm -f "$WORK/ref.tar.zst"

log "pgBackRest full backup (offline)"
mkdir -p "$WORK/pgbr/repo" "$WORK/pgbr/log" "$WORK/pgbr/spool"
cat > "$WORK/pgbr/pgbackrest.conf" <<CONF
[global]
repo1-path=$WORK/pgbr/repo
log-path=$WORK/pgbr/log
spool-path=$WORK/pgbr/spool
lock-path=$WORK/pgbr/spool
compress-type=zst
compress-level=1
process-max=2
start-fast=y
log-level-console=warn
[bench]
pg1-path=$DATA/pgdata
CONF
T_BR="n/a" R_BR="n/a" BR_NOTE=""
if pgbackrest --config="$WORK/pgbr/pgbackrest.conf" --stanza=bench --no-online stanza-create >"$WORK/pgbr/out" 2>&1 &&
   measure pgbr pgbackrest --config="$WORK/pgbr/pgbackrest.conf" --stanza=bench --no-online --type=full backup >>"$WORK/pgbr/out" 2>&1; then
  T_BR=$WALL R_BR=$RSS
else
  BR_NOTE=$(grep -m1 -iE 'error|unexpected' "$WORK/pgbr/out" | cut -c1-160 || true)
  log "pgBackRest failed: $BR_NOTE"
fi

# 4: the real migration of the filled stack (starts from the running split stack)
docker compose --project-directory "$STACK" up -d >/dev/null 2>&1
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$API_PORT/api/v1/health" >/dev/null && break; sleep 1; done
log "hive-migrate up"
measure up "$ROOT/hive-migrate" up --stack "$STACK" --yes --json --quiet --container-name "$UNIFIED" \
  --templates "$ROOT/docker/templates" > "$WORK/up.json"
R_UP=$RSS
# with the pre-copy (issue 13) the whole archive pass runs before the stop (step "precopy"),
# only the delta in the downtime ("delta" = "snapshot"), the merge after health ("merge")
read -r T_SNAP DOWNTIME ABYTES DBYTES PRECOPY VERIFIED < <(/usr/bin/python3 -c "
import json; p = json.load(open('$WORK/up.json'))['profiles'][0]; s = p['step_seconds']
pc = s.get('precopy', 0) > 0
print(s['precopy'] if pc else p['snapshot_seconds'], p['downtime_seconds'], p['archive_bytes'],
      p['data_bytes'], p.get('precopy') or 'off', p.get('verified_seconds', -1))")
SPLIT=$(/usr/bin/python3 -c "
import json; s = json.load(open('$WORK/up.json'))['profiles'][0]['step_seconds']
print(f\"pre-copy {s.get('precopy', 0):.1f} s + verify {s.get('precopy_verify', 0):.1f} s before the stop; \"
      f\"in the downtime stop {s['stop']:.1f} s, delta {s.get('delta', 0):.2f} s + verify {s.get('delta_verify', 0):.2f} s, \"
      f\"chown {s['chown']:.2f} s, start {s['start']:.1f} s, health {s['health']:.1f} s; merge {s.get('merge', 0):.1f} s after health\")")
STEPS=$(/usr/bin/python3 -c "
import json; p = json.load(open('$WORK/up.json'))['profiles'][0]['step_seconds']
print(', '.join(f'{k} {v:.1f} s' for k, v in p.items()))")
log "hive-migrate rollback (live, with the safety snapshot)"
measure rbl "$ROOT/hive-migrate" rollback --stack "$STACK" --yes --json --quiet > "$WORK/rb-live.json"
jget() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['profiles'][0][sys.argv[2]])" "$@"; }
RB_LIVE=$(jget "$WORK/rb-live.json" downtime_seconds) R_RBL=$RSS
rm -f "$(jget "$WORK/rb-live.json" safety_archive)"
up_again() {
  "$ROOT/hive-migrate" up --stack "$STACK" --yes --quiet --container-name "$UNIFIED" \
    --templates "$ROOT/docker/templates" >/dev/null
}
log "hive-migrate rollback --no-safety-snapshot (after another up)"
up_again
"$ROOT/hive-migrate" rollback --stack "$STACK" --yes --json --quiet --no-safety-snapshot > "$WORK/rb-nosafe.json"
RB_NOSAFE=$(jget "$WORK/rb-nosafe.json" downtime_seconds)
log "hive-migrate rollback --to-snapshot (after another up)"
up_again
measure rbs "$ROOT/hive-migrate" rollback --stack "$STACK" --yes --json --quiet --to-snapshot > "$WORK/rb-snap.json"
RB_SNAP=$WALL
log "hive-migrate up --no-precopy (the whole snapshot in the downtime, same run), then rollback"
"$ROOT/hive-migrate" up --stack "$STACK" --yes --json --quiet --no-precopy --container-name "$UNIFIED" \
  --templates "$ROOT/docker/templates" > "$WORK/up-noprecopy.json"
"$ROOT/hive-migrate" rollback --stack "$STACK" --yes --quiet --no-safety-snapshot >/dev/null
NOPC=$(jget "$WORK/up-noprecopy.json" downtime_seconds)

REF=$(mbps "$BYTES" "$T_TAR") OURS=$(mbps "$DBYTES" "$T_SNAP")
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
if [ -n "${BENCH_JSON:-}" ]; then
  SIZE=$SIZE BYTES=$BYTES T_TAR=$T_TAR R_TAR=$R_TAR T_BR=$T_BR R_UP=$R_UP R_RBL=$R_RBL \
  RB_LIVE=$RB_LIVE RB_NOSAFE=$RB_NOSAFE RB_SNAP=$RB_SNAP LOAD0=$LOAD0 LOAD1=$LOAD1 \
  /usr/bin/python3 - "$WORK/up.json" "$BENCH_JSON" "$WORK/rb-live.json" "$WORK/up-noprecopy.json" <<'PY'
import json, os, sys
e = os.environ
def num(k):
    try:
        return float(e[k])
    except (KeyError, ValueError):
        return None
up = json.load(open(sys.argv[1]))["profiles"][0]
try:
    rb_steps = json.load(open(sys.argv[3]))["profiles"][0].get("step_seconds")
except (OSError, ValueError, KeyError, IndexError):
    rb_steps = None
try:
    nopc = json.load(open(sys.argv[4]))["profiles"][0]
except (OSError, ValueError, KeyError, IndexError):
    nopc = {}
rss = {"tar_zstd": num("R_TAR"), "up": num("R_UP"), "rollback": num("R_RBL")}
out = {
    "size": e["SIZE"], "bytes": int(e["BYTES"]),
    "up_downtime_seconds": up["downtime_seconds"], "up_step_seconds": up["step_seconds"],
    "up_verified_seconds": up.get("verified_seconds"),
    "up_no_precopy_downtime_seconds": nopc.get("downtime_seconds"),
    "up_no_precopy_verified_seconds": nopc.get("verified_seconds"),
    "up_no_precopy_step_seconds": nopc.get("step_seconds"),
    "fingerprint_during_health": up.get("fingerprint_during_health"),
    "rollback_downtime_seconds": num("RB_LIVE"), "rollback_step_seconds": rb_steps,
    "rollback_no_safety_downtime_seconds": num("RB_NOSAFE"),
    "rollback_to_snapshot_seconds": num("RB_SNAP"),
    "snapshot_seconds": up["snapshot_seconds"], "tar_zstd_seconds": num("T_TAR"),
    "precopy": up.get("precopy") or "off",
    "precopy_seconds": up["step_seconds"].get("precopy"),
    "delta_seconds": up["step_seconds"].get("delta"),
    "merge_seconds": up["step_seconds"].get("merge"),
    "pgbackrest_seconds": num("T_BR"),
    "peak_rss_mb": max(v for k, v in rss.items() if k != "tar_zstd" and v is not None),
    "peak_rss_mb_by_run": rss,
    "load_avg_start": num("LOAD0"), "load_avg_end": num("LOAD1"),
}
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
os.replace(tmp, sys.argv[2])
PY
  log "results written to $BENCH_JSON"
fi
cat <<MD
| measurement ($SIZE data set, $(numfmt --to=iec "$BYTES") directory) | seconds | throughput | peak RSS | output |
|---|---|---|---|---|
| \`tar -cf - DIR \| zstd -1 -T2\` | $T_TAR | $REF MB/s | $R_TAR MB | $(numfmt --to=iec "$S_TAR") |
| hive-migrate snapshot (tar+zstd 1, 2 threads, SHA-256 manifest; with the pre-copy: its base, before the stop) | $(printf %.2f "$T_SNAP") | $OURS MB/s ($(awk -v a="$OURS" -v b="$REF" 'BEGIN{printf "%.0f", (b>0? 100*a/b : 0)}')% of reference) | $R_UP MB (whole \`up\`) | $(numfmt --to=iec "$ABYTES") |
| pgBackRest 2.45 full, offline, zst 1, process-max 2 | $T_BR | | $R_BR MB | ${BR_NOTE:+failed: $BR_NOTE} |
| downtime of \`hive-migrate up\` (stop of the split stack begun -> unified API healthy; data verified at $(printf %.1f "$VERIFIED") s) | $(printf %.1f "$DOWNTIME") | | | |
| downtime of \`hive-migrate up --no-precopy\` (same run: the whole snapshot in the downtime) | $(printf %.1f "$NOPC") | | | |
| downtime of \`hive-migrate rollback\` (live: unified stopped -> split healthy, incl. safety snapshot + verify + fingerprint) | $(printf %.1f "$RB_LIVE") | | $R_RBL MB | |
| downtime of \`hive-migrate rollback --no-safety-snapshot\` (live) | $(printf %.1f "$RB_NOSAFE") | | | |
| wall time of \`hive-migrate rollback --to-snapshot\` (report, verify, safety snapshot, extract, swap, start, verify) | $RB_SNAP | | | |

steps of \`up\` (seconds): $STEPS
pre-copy ($PRECOPY): $SPLIT
load average (1 min) at the start / end: $LOAD0 / $LOAD1
MD
