#!/usr/bin/env bash
# Benchmark of `up` across PostgreSQL majors (not part of `make test`): a PostgreSQL 15 split
# stack (the stand-in for the 16 that users run; no Debian suite here ships 16) filled with
# the generated data set (default 1GB), then in one run:
#   1. the anchor, by hand with the target image's own tools against the running old server:
#      pg_dump -Fd -j2, then into a new cluster pg_restore -j2 (timed as schema + rows, then
#      indexes and constraints), and a REINDEX of the HNSW index alone; its server gets the
#      same maintenance_work_mem as up's restore worker (a quarter of MemAvailable, 256 MB to
#      2 GB; --mwm MB overrides both, e.g. --mwm 256 to see the HNSW build overflow);
#   2. `hive-migrate up` across majors onto the unified 17, its downtime split by step
#      (the JSON's step_seconds) and hive-migrate's own peak memory (GNU time; the dump and
#      restore tools run in containers and are reported by the anchor's numbers).
# Prints a markdown block for docs/benchmarks.md ("Up across majors").
# Usage: tests/bench/major.sh [--size 1GB] [--jobs 2] [--mwm MB] [--keep]
# Names hj-bench-*, ports 25896 (API) / 25542 (PostgreSQL); needs root and the engine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
SIZE=1GB KEEP=0 JOBS=2 MWM=
while [ $# -gt 0 ]; do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --mwm) MWM=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "major.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
API_PORT=25896 PG_PORT=25542 PREFIX=hj-bench- UNIFIED=hj-bench-hive-agent-unified
IMAGE=localhost/hive-unified:17
WORK=$(mktemp -d /var/tmp/hj-bench.XXXXXX)
STACK=$WORK/hj-bench-stack
ANCHOR=hj-bench-anchor
log() { printf 'bench: %s\n' "$*" >&2; }
cleanup() {
  docker rm -f "$ANCHOR" "$UNIFIED" "$UNIFIED-major-dump" "$UNIFIED-major-restore" >/dev/null 2>&1 || true
  [ -f "$STACK/.env" ] && docker compose --project-directory "$STACK" down -t 30 >/dev/null 2>&1 || true
  [ $KEEP = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/fixtures/split/build-images.sh" 15 api >/dev/null
"$ROOT/docker/build-image.sh" >/dev/null 2>&1
make -s -C "$ROOT" hive-migrate
HIVE_NAME_PREFIX=$PREFIX HIVE_AGENT_API_PORT=$API_PORT HIVE_AGENT_PG_PORT=$PG_PORT \
  "$ROOT/fixtures/split/new-stack.sh" "$STACK" --profile agent --pg 15 >/dev/null
"$ROOT/tests/health-pump.sh" --ensure >/dev/null 2>&1 || true
docker compose --project-directory "$STACK" up -d >/dev/null 2>&1
PW=$(grep '^AGENT_DB_PASSWORD=' "$STACK/.env" | cut -d= -f2)
DSN="host=127.0.0.1 port=$PG_PORT user=agent dbname=hive_agent"
deadline=$((SECONDS + 180))
until PGPASSWORD=$PW /usr/bin/python3 -c "import psycopg; psycopg.connect('$DSN').close()" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { log "the split stack did not come up"; exit 1; }
  sleep 1
done
log "filling $SIZE (fixtures/generate-data.py)"
PGPASSWORD=$PW /usr/bin/python3 "$ROOT/fixtures/generate-data.py" --quiet --json --dsn "$DSN" \
  --size "$SIZE" > "$WORK/fill.json"
# settle the old server first: autovacuum of the freshly loaded tables (an HNSW index's vacuum
# is CPU-heavy) would otherwise run during whichever measurement comes first
log "VACUUM (ANALYZE) on the old server"
PGPASSWORD=$PW /usr/bin/python3 -c "
import psycopg; c = psycopg.connect('$DSN', autocommit=True); c.execute('VACUUM (ANALYZE)')"
DBBYTES=$(PGPASSWORD=$PW /usr/bin/python3 -c "
import psycopg; c = psycopg.connect('$DSN'); print(c.execute('SELECT pg_database_size(current_database())').fetchone()[0])")
HNSW=$(PGPASSWORD=$PW /usr/bin/python3 -c "
import psycopg; c = psycopg.connect('$DSN')
r = c.execute(\"SELECT schemaname || '.' || indexname FROM pg_indexes WHERE indexdef ILIKE '%USING hnsw%' LIMIT 1\").fetchone()
print(r[0] if r else '')")

# maintenance_work_mem as hm_major_index_memory_mb computes it (migrate/major.c)
[ -n "$MWM" ] || MWM=$(awk '/^MemAvailable:/ { mb = int($2 / 1024 / 4); if (mb < 256) mb = 256; if (mb > 2048) mb = 2048; print mb }' /proc/meminfo)

# 1. the anchor: the same tools and server settings as up's workers, by hand
log "anchor: pg_dump -Fd -j$JOBS, pg_restore -j$JOBS (image $IMAGE)"
mkdir -p "$WORK/anchor"
chown 1000:1000 "$WORK/anchor"
cat > "$WORK/anchor.sh" <<'SH'
set -e
now() { date +%s.%N; }
t0=$(now)
pg_dump -h 127.0.0.1 -p "$1" -U agent -Fd -j "$2" -f /w/dump hive_agent
t1=$(now)
initdb -D /w/new -U agent --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
mkdir -p /tmp/s
pg_ctl -D /w/new -l /w/log -w -o "-c listen_addresses= -c unix_socket_directories=/tmp/s -c max_wal_size=4GB -c maintenance_work_mem=${4}MB -c checkpoint_timeout=30min" start >/dev/null
t2=$(now)
pg_restore -h /tmp/s -U agent -C -d postgres -j "$2" --exit-on-error --section=pre-data --section=data /w/dump
t3=$(now)
pg_restore -h /tmp/s -U agent -d hive_agent -j "$2" --exit-on-error --section=post-data /w/dump
t4=$(now)
if [ -n "$3" ]; then psql -X -q -h /tmp/s -U agent -d hive_agent -c "REINDEX INDEX $3"; fi
t5=$(now)
vacuumdb -q -h /tmp/s -U agent --all --analyze-in-stages
t6=$(now)
pg_ctl -D /w/new -m fast -w stop >/dev/null
echo "$t0 $t1 $t2 $t3 $t4 $t5 $t6"
SH
PGPASSWORD=$PW docker run --rm --name "$ANCHOR" --network host --user 1000:1000 --shm-size "$((MWM + 512))m" -e PGPASSWORD \
  -v "$WORK/anchor:/w" -v "$WORK/anchor.sh:/anchor.sh:ro" --entrypoint bash "$IMAGE" /anchor.sh "$PG_PORT" "$JOBS" "$HNSW" "$MWM" \
  > "$WORK/anchor.times"
read -r a0 a1 a2 a3 a4 a5 a6 < "$WORK/anchor.times"
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
A_DUMP=$(sub "$a0" "$a1") A_ROWS=$(sub "$a2" "$a3") A_IDX=$(sub "$a3" "$a4") A_HNSW=$(sub "$a4" "$a5") A_AN=$(sub "$a5" "$a6")
A_SUM=$(awk -v d="$A_DUMP" -v r="$A_ROWS" -v i="$A_IDX" 'BEGIN { printf "%.1f", d + r + i }')
DUMPBYTES=$(du -sb "$WORK/anchor/dump" | cut -f1)
rm -rf "$WORK/anchor"

# 2. the real migration across majors of the same running stack
log "hive-migrate up across majors (15 -> 17)"
HIVE_MIGRATE_INDEX_MEMORY_MB=$MWM /usr/bin/time -v -o "$WORK/up.time" "$ROOT/hive-migrate" up --stack "$STACK" --profile agent --yes --json --quiet \
  --name-prefix "$PREFIX" --image "$IMAGE" --jobs "$JOBS" --health-timeout 300 > "$WORK/up.json"
R_UP=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$WORK/up.time")
read -r DOWNTIME STEPS S_DUMP S_SNAP S_REST S_AN < <(/usr/bin/python3 -c "
import json; p = json.load(open('$WORK/up.json'))['profiles'][0]
assert p['result'] == 'migrated' and p.get('cross_major'), p
s = p['step_seconds']
print('%.1f' % p['downtime_seconds'], ', '.join(f'{k} {v:.1f}' for k, v in s.items()).replace(' ', '_'),
      '%.1f' % s['dump'], '%.1f' % s['snapshot'], '%.1f' % s['restore'], '%.1f' % s['analyze'])")
RATIO=$(awk -v d="$DOWNTIME" -v a="$A_SUM" 'BEGIN { printf "%.2f", (a > 0 ? d / a : 0) }')

cat <<MD
| measurement ($SIZE data set, database $(numfmt --to=iec "$DBBYTES"), dump $(numfmt --to=iec "$DUMPBYTES"), -j$JOBS, maintenance_work_mem ${MWM} MB) | seconds |
|---|---|
| anchor: \`pg_dump -Fd -j$JOBS\` against the old server | $A_DUMP |
| anchor: \`pg_restore -j$JOBS\` schema + rows | $A_ROWS |
| anchor: \`pg_restore -j$JOBS\` indexes and constraints (post-data) | $A_IDX |
| anchor: of which the HNSW index alone (\`REINDEX INDEX $HNSW\`) | $A_HNSW |
| anchor: \`vacuumdb --analyze-in-stages\` (not in the anchor's sum) | $A_AN |
| **anchor: dump + restore** | **$A_SUM** |
| **downtime of \`hive-migrate up\` across majors** (API stopped -> unified healthy and verified) | **$DOWNTIME** ($RATIO x the anchor) |
| of which dump / snapshot / restore / analyze | $S_DUMP / $S_SNAP / $S_REST / $S_AN |

steps of \`up\` (seconds): ${STEPS//_/ }; peak RSS of hive-migrate: $R_UP MB
MD
