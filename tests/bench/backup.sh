#!/bin/bash
# Backup benchmark (not part of `make test`): throughput, archive size and peak memory of
#   hive-migrate backup            (BASE_BACKUP, server-side zstd:1 with workers=2 by default,
#                                   and with --zstd-workers 0; one outer tar)
#   pg_basebackup -Ft -X fetch --compress=server-zstd:1 (and server-zstd:level=1,workers=2)
#   pgBackRest full backups        (compress-type zst, level 1, process-max 1 and 2)
# against the same PostgreSQL server, one after the other, RUNS times each (median reported).
#
# Part A (default): a throwaway PostgreSQL 15 cluster on the host (Debian's binaries; bookworm's
#   pgBackRest 2.45 supports up to 15), filled to about 1 GB with pgbench -i (no pgvector on 15).
# Part A is skipped with BENCH_PG15=0.
# Part B (BENCH_PG17=1): the unified container (localhost/hive-unified:17) filled with
#   fixtures/generate-data.py --size 1GB; hive-migrate vs the image's own pg_basebackup 17
#   (pgBackRest 2.45 cannot back up 17).
# Ports: 33533 (PG in part B), 33432 (part A); containers hq-bench-*; data under $BENCH_DIR.
# Output: a markdown table on stdout (paste into docs/benchmarks.md, section "Backup").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HM="$ROOT/hive-migrate"
RUNS=${RUNS:-3}
SCALE=${SCALE:-70}                       # pgbench scale: 70 ~ 1.05 GB
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/hq-bench.XXXXXX)}
PGBIN=/usr/lib/postgresql/15/bin
PORT=${BENCH_PORT:-33432}
PW="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export PGPASSWORD="$PW" HIVE_BACKUP_PASSWORD="$PW"

[ -x "$HM" ] || { echo "build first: make" >&2; exit 2; }
chown postgres "$BENCH_DIR"
cleanup() {
	su postgres -c "$PGBIN/pg_ctl -D $BENCH_DIR/data -m fast stop" >/dev/null 2>&1 || true
	if [ -n "${BENCH_PG17:-}" ]; then docker rm -f hq-bench-pg17 >/dev/null 2>&1 || true; fi
	[ -n "${KEEP:-}" ] || rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

# /usr/bin/time -v wrapper: prints "seconds maxrss_kb" of the command.
measure() {
	local out="$BENCH_DIR/time.$$"
	/usr/bin/time -v -o "$out" "$@" >/dev/null 2>"$BENCH_DIR/last.err" || { cat "$BENCH_DIR/last.err" >&2; return 1; }
	awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]}
	            /Maximum resident set size/ {m=$2} END {printf "%.2f %d\n", s, m}' "$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
size_of() { du -sb "$1" | cut -f1; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f", b/1e6}'; }

row() { # name seconds-list rss-list size
	local name=$1 secs=$2 rss=$3 size=$4
	local s r
	s=$(echo "$secs" | tr ' ' '\n' | grep . | median)
	r=$(echo "$rss" | tr ' ' '\n' | grep . | median)
	printf '| %s | %s | %s | %s | %s |\n' "$name" "$s" "$(awk -v d="$DB_BYTES" -v s="$s" 'BEGIN {printf "%.0f", d/1e6/s}')" \
		"$(mb "$size")" "$(awk -v r="$r" 'BEGIN {if (r > 0) printf "%.0f", r/1024; else printf "n/a"}')"
}

# ---------------------------------------------------------------- part A: host PostgreSQL 15
if [ "${BENCH_PG15:-1}" = 1 ]; then
echo "== part A: PostgreSQL 15 on port $PORT, pgbench scale $SCALE, $RUNS runs each" >&2
su postgres -c "$PGBIN/initdb -D $BENCH_DIR/data -U postgres --auth=trust -k" >/dev/null
mkdir -p "$BENCH_DIR"/{pgbr-repo,pgbr-log,pgbr-lock,out}
chown postgres "$BENCH_DIR"/pgbr-*
cat > "$BENCH_DIR/pgbackrest.conf" <<CONF
[global]
repo1-path=$BENCH_DIR/pgbr-repo
repo1-retention-full=100
log-path=$BENCH_DIR/pgbr-log
lock-path=$BENCH_DIR/pgbr-lock
log-level-console=warn
compress-type=zst
compress-level=1
start-fast=y
[bench]
pg1-path=$BENCH_DIR/data
pg1-port=$PORT
pg1-socket-path=$BENCH_DIR
CONF
chmod 644 "$BENCH_DIR/pgbackrest.conf"
cat >> "$BENCH_DIR/data/postgresql.conf" <<CONF
port=$PORT
listen_addresses='127.0.0.1'
unix_socket_directories='$BENCH_DIR'
wal_level=replica
max_wal_senders=5
shared_buffers=256MB
archive_mode=on
archive_command='pgbackrest --config=$BENCH_DIR/pgbackrest.conf --stanza=bench archive-push %p'
CONF
cat > "$BENCH_DIR/data/pg_hba.conf" <<CONF
local all all trust
host replication hive_backup 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
CONF
su postgres -c "$PGBIN/pg_ctl -D $BENCH_DIR/data -l $BENCH_DIR/pg.log -w start" >/dev/null
psql -h "$BENCH_DIR" -p "$PORT" -U postgres -qc "CREATE ROLE hive_backup LOGIN REPLICATION PASSWORD '$PW'" >/dev/null
su postgres -c "$PGBIN/pgbench -h $BENCH_DIR -p $PORT -U postgres -i -s $SCALE -q postgres" >/dev/null 2>&1
psql -h "$BENCH_DIR" -p "$PORT" -U postgres -qc "CHECKPOINT" >/dev/null
DB_BYTES=$(( $(size_of "$BENCH_DIR/data") - $(size_of "$BENCH_DIR/data/pg_wal") ))
su postgres -c "pgbackrest --config=$BENCH_DIR/pgbackrest.conf --stanza=bench stanza-create" >/dev/null
echo "data directory: $(mb "$DB_BYTES") MB" >&2

echo "| tool (PostgreSQL 15, $(mb "$DB_BYTES") MB data dir without pg_wal, archive_mode on) | seconds (median of $RUNS) | MB/s | archive MB | peak RSS MB |"
echo "|---|---|---|---|---|"
secs=""; rss=""
for i in $(seq "$RUNS"); do
	rm -rf "$BENCH_DIR/hm-repo"
	read -r s r < <(measure "$HM" backup --repo "$BENCH_DIR/hm-repo" --host 127.0.0.1 --port "$PORT" --user hive_backup --quiet)
	secs="$secs $s"; rss="$rss $r"
done
row "hive-migrate backup (WAIT true: waits for archive_command)" "$secs" "$rss" "$(size_of "$BENCH_DIR/hm-repo")"
secs=""; rss=""
for i in $(seq "$RUNS"); do
	rm -rf "$BENCH_DIR/hm-repo"
	read -r s r < <(measure "$HM" backup --repo "$BENCH_DIR/hm-repo" --host 127.0.0.1 --port "$PORT" --user hive_backup --quiet --no-wait-archive)
	secs="$secs $s"; rss="$rss $r"
done
row "hive-migrate backup --no-wait-archive (WAIT false, as pg_basebackup)" "$secs" "$rss" "$(size_of "$BENCH_DIR/hm-repo")"
secs=""; rss=""
for i in $(seq "$RUNS"); do
	rm -rf "$BENCH_DIR/out/pgbb"
	read -r s r < <(measure "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U hive_backup -D "$BENCH_DIR/out/pgbb" \
		-Ft -X fetch --compress=server-zstd:1 -c fast)
	secs="$secs $s"; rss="$rss $r"
done
row "pg_basebackup -Ft -X fetch server-zstd:1" "$secs" "$rss" "$(size_of "$BENCH_DIR/out/pgbb")"
for pm in 1 2; do
	secs=""; rss=""
	for i in $(seq "$RUNS"); do
		rm -rf "$BENCH_DIR"/pgbr-repo/backup/bench/2* 2>/dev/null || true
		before=$(size_of "$BENCH_DIR/pgbr-repo")
		read -r s r < <(measure su postgres -c "pgbackrest --config=$BENCH_DIR/pgbackrest.conf --stanza=bench --type=full --process-max=$pm backup")
		secs="$secs $s"; rss="$rss $r"
	done
	# su's own RSS is reported by time -v only for the tree's largest process; pgbackrest dominates
	row "pgBackRest 2.45 full, zst:1, process-max $pm" "$secs" "$rss" "$(( $(size_of "$BENCH_DIR/pgbr-repo/backup") ))"
done

fi

# ---------------------------------------------------------------- part B: unified PostgreSQL 17
if [ -n "${BENCH_PG17:-}" ]; then
	export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
	echo "== part B: unified container, generate-data.py --size 1GB" >&2
	mkdir -p "$BENCH_DIR/pg17"; chown 1000:1000 "$BENCH_DIR/pg17"
	docker rm -f hq-bench-pg17 >/dev/null 2>&1 || true
	docker run -d --name hq-bench-pg17 -e HIVE_PROFILE=agent -e HIVE_DB_PASSWORD="$PW" -e HIVE_BACKUP_PASSWORD="$PW" \
		-e HIVE_API_PORT=33887 -p 127.0.0.1:33533:5432 -v "$BENCH_DIR/pg17:/var/lib/postgresql/data" \
		localhost/hive-unified:17 >/dev/null
	for _ in $(seq 120); do pg_isready -q -h 127.0.0.1 -p 33533 && psql -h 127.0.0.1 -p 33533 -U agent -d hive_agent -qAtc "select 1" >/dev/null 2>&1 && break; sleep 1; done
	/usr/bin/python3 "$ROOT/fixtures/generate-data.py" --dsn "host=127.0.0.1 port=33533 user=agent dbname=hive_agent" --size 1GB --seed 1 >&2
	psql -h 127.0.0.1 -p 33533 -U agent -d hive_agent -qc "CHECKPOINT" >/dev/null 2>&1 || true  # needs pg_checkpoint; BASE_BACKUP checkpoints anyway
	DB_BYTES=$(( $(size_of "$BENCH_DIR/pg17/pgdata") - $(size_of "$BENCH_DIR/pg17/pgdata/pg_wal") ))
	echo
	echo "| tool (PostgreSQL 17 + pgvector, $(mb "$DB_BYTES") MB data dir without pg_wal) | seconds (median of $RUNS) | MB/s | archive MB | peak RSS MB |"
	echo "|---|---|---|---|---|"
	secs=""; rss=""
	for i in $(seq "$RUNS"); do
		rm -rf "$BENCH_DIR/hm-repo17"
		read -r s r < <(measure "$HM" backup --repo "$BENCH_DIR/hm-repo17" --host 127.0.0.1 --port 33533 --user hive_backup --quiet)
		secs="$secs $s"; rss="$rss $r"
	done
	row "hive-migrate backup (zstd workers=2, the default)" "$secs" "$rss" "$(size_of "$BENCH_DIR/hm-repo17")"
	secs=""; rss=""
	for i in $(seq "$RUNS"); do
		rm -rf "$BENCH_DIR/hm-repo17"
		read -r s r < <(measure "$HM" backup --repo "$BENCH_DIR/hm-repo17" --host 127.0.0.1 --port 33533 --user hive_backup --quiet --zstd-workers 0)
		secs="$secs $s"; rss="$rss $r"
	done
	row "hive-migrate backup --zstd-workers 0" "$secs" "$rss" "$(size_of "$BENCH_DIR/hm-repo17")"
	secs=""
	for i in $(seq "$RUNS"); do
		rm -rf "$BENCH_DIR/out/pgbb17"; mkdir -p "$BENCH_DIR/out/pgbb17"; chown 1000:1000 "$BENCH_DIR/out/pgbb17"
		t0=$(date +%s.%N)
		docker exec -e PGPASSWORD="$PW" hq-bench-pg17 pg_basebackup -h 127.0.0.1 -p 5432 -U hive_backup \
			-D /var/lib/postgresql/data/bb -Ft -X fetch --compress=server-zstd:1 -c fast
		t1=$(date +%s.%N)
		secs="$secs $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')"
		bbsize=$(size_of "$BENCH_DIR/pg17/bb"); rm -rf "$BENCH_DIR/pg17/bb"
	done
	row "pg_basebackup 17 (in the container) -Ft -X fetch server-zstd:1" "$secs" "0" "$bbsize"
	secs=""
	for i in $(seq "$RUNS"); do
		rm -rf "$BENCH_DIR/out/pgbb17"
		t0=$(date +%s.%N)
		docker exec -e PGPASSWORD="$PW" hq-bench-pg17 pg_basebackup -h 127.0.0.1 -p 5432 -U hive_backup \
			-D /var/lib/postgresql/data/bb -Ft -X fetch --compress=server-zstd:level=1,workers=2 -c fast
		t1=$(date +%s.%N)
		secs="$secs $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')"
		bbsize=$(size_of "$BENCH_DIR/pg17/bb"); rm -rf "$BENCH_DIR/pg17/bb"
	done
	row "pg_basebackup 17 (in the container) server-zstd:level=1,workers=2" "$secs" "0" "$bbsize"
fi
