#!/usr/bin/env bash
# Scale benchmark (issue 13; not part of `make test`): for each data size, the unified
# container (localhost/hive-unified:17) is filled by fixtures/generate-data.py --size S and,
# RUNS times each, tool and anchor interleaved in the same run:
#   online backup   hive-migrate backup            | pg_basebackup -Ft -X fetch -c fast
#                                                    --compress=server-zstd:1 (in the container),
#                                                    and with server-zstd:level=1,workers=2;
#                                                    both again on our path: from a client
#                                                    container on the host network through
#                                                    the published port, timed inside it
#   fast backup     hive-migrate backup --zstd-level -1 | pg_basebackup (our path) with
#                                                    server-zstd:level=-1,workers=2
#   online restore  hive-migrate backups restore   | zstd -d base.tar.zst | tar -x (then sync -f)
#   online verify   hive-migrate backups verify    | zstd -d base.tar.zst | tar -x (as above)
#   snapshot        hive-migrate backup --offline  | tar -cf - DIR | zstd -1 -T2 (then sync -f)
#                   (common/archive_dir: the code of up's snapshot; server stopped)
#   offline restore hive-migrate backups restore   | zstd -d | tar -x of the anchor's archive
# with peak RSS (GNU time -v) and, for the online backups, the client's CPU seconds. With
# BENCH_MIGRATE=1 it also runs tests/bench/migrate.sh --size S with BENCH_JSON=FILE and takes up/rollback downtime by step from that file (a key missing
# there leaves its column empty).
# Output: one markdown table on stdout, and JSON (list of one object per size) in
# $SCALE_JSON (default docs/benchmarks-scale.json) for tests/bench/plot.py.
# Usage: tests/bench/scale.sh [--sizes "200MB 1GB 2GB"] [--runs N]
# Names hq-bench-scale and hq-bench-scale-client, ports 33532 (PostgreSQL) and 33886 (API);
# needs root and the engine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
HM=${HM:-$ROOT/hive-migrate}
SIZES="200MB 1GB 2GB" RUNS=${RUNS:-3}
SCALE_JSON=${SCALE_JSON:-$ROOT/docs/benchmarks-scale.json}
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) SIZES=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	-h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
NAME=hq-bench-scale CLIENT=hq-bench-scale-client PG_PORT=33532 API_PORT=33886
IMAGE=${IMAGE:-localhost/hive-unified:17}
WORK=$(mktemp -d /var/tmp/hq-bench-scale.XXXXXX)
PW="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export PGPASSWORD="$PW" HIVE_BACKUP_PASSWORD="$PW"
[ -x "$HM" ] || { echo "build first: make" >&2; exit 2; }
log() { printf 'scale: %s\n' "$*" >&2; }
cleanup() {
	docker rm -f "$NAME" "$CLIENT" >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# "seconds rss_mb cpu_seconds" of a command (GNU time -v; its output discarded).
measure() {
	/usr/bin/time -v -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
	awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]}
	            /(User|System) time \(seconds\)/ {c+=$2}
	            /Maximum resident set size/ {m=$2} END {printf "%.2f %.0f %.2f\n", s, m/1024, c}' "$WORK/time"
}
# pg_basebackup 17 on the path our client takes (host network, the published port), timed
# inside the client container so that docker exec's own start is not counted; the server's
# compression detail is $1. Prints "seconds cpu_seconds".
pgbb_our_path() {
	docker exec "$CLIENT" rm -rf /out/bb
	docker exec -e PGPASSWORD="$PW" "$CLIENT" bash -c "TIMEFORMAT='%R %U %S'; time pg_basebackup \
		-h 127.0.0.1 -p $PG_PORT -U hive_backup -D /out/bb -Ft -X fetch --compress=server-zstd:$1 \
		-c fast" 2>"$WORK/bb.err" || { cat "$WORK/bb.err" >&2; return 1; }
	docker exec "$CLIENT" rm -rf /out/bb
	tail -1 "$WORK/bb.err" | awk '{printf "%.2f %.2f\n", $1, $2 + $3}'
}
# The restores, tool and anchor, as steps for alternate().
restore_ours() {
	read -r s r _ < <(measure "$HM" backups restore "$ID" --repo "$WORK/repo" --to "$WORK/restored")
	add rs "$s"; add rs_rss "$r"
}
restore_anchor() {
	read -r a b < <(anchor_restore "$WORK/base.tar.zst" "$WORK/anchor")
	add zt "$a"; add zts "$b"
}
orestore_ours() {
	read -r s r _ < <(measure "$HM" backups restore "$OID" --repo "$WORK/orepo" --to "$WORK/orestored")
	add ors "$s"; add ors_rss "$r"
}
orestore_anchor() {
	read -r a b < <(anchor_restore "$WORK/anchor.tar.zst" "$WORK/oanchor")
	add ozt "$a"; add ozts "$b"
}
# Run two steps, in this order in odd runs ($1) and swapped in even ones. Why: on an ext4
# without a journal (this machine's root file system), the inode allocator skips every inode
# freed in the last 60-300 s (fs/ext4/ialloc.c, recently_deleted()), so the first tree
# created after the previous run's trees were deleted is the slower one; seen at 200 MB as
# 2.05 s against 1.18 s for the same restore, depending only on which went first.
alternate() {
	if [ $(($1 % 2)) = 1 ]; then "$2"; "$3"; else "$3"; "$2"; fi
}
start_client() {
	docker rm -f "$CLIENT" >/dev/null 2>&1 || true
	mkdir -p "$WORK/out"; chown 1000:1000 "$WORK/out"
	docker run -d --name "$CLIENT" --network host --user 1000:1000 --entrypoint sleep \
		-v "$WORK/out:/out" "$IMAGE" infinity >/dev/null
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b-a}'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "null"}'; }
# The anchor restore: zstd -d FILE | tar -x into a new DIR, then sync -f; "tar_s sync_s".
anchor_restore() { # file dir
	rm -rf "$2"; mkdir -p "$2"
	local t0 t1
	t0=$(now)
	zstd -q -d -c "$1" | tar -xf - -C "$2"
	t1=$(since "$t0")
	sync -f "$2"
	echo "$t1 $(since "$t0")"
}

start_server() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	rm -rf "$WORK/pg"; mkdir -p "$WORK/pg"; chown 1000:1000 "$WORK/pg"
	docker run -d --name "$NAME" -e HIVE_PROFILE=agent -e HIVE_DB_PASSWORD="$PW" \
		-e HIVE_BACKUP_PASSWORD="$PW" -e HIVE_API_PORT="$API_PORT" \
		-p "127.0.0.1:$PG_PORT:5432" -v "$WORK/pg:/var/lib/postgresql/data" \
		"$IMAGE" >/dev/null
	for _ in $(seq 120); do
		psql -h 127.0.0.1 -p "$PG_PORT" -U agent -d hive_agent -qAtc "select 1" >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "scale.sh: the server did not start" >&2
	return 1
}

start_client
echo "[" >"$WORK/scale.json"
first=1
for S in $SIZES; do
	log "size $S: filling"
	start_server
	/usr/bin/python3 "$ROOT/fixtures/generate-data.py" --quiet --size "$S" --seed 1 \
		--dsn "host=127.0.0.1 port=$PG_PORT user=agent dbname=hive_agent" >&2
	PGDATA_H="$WORK/pg/pgdata"
	DB_MB=$(( ($(du -sb "$PGDATA_H" | cut -f1) - $(du -sb "$PGDATA_H/pg_wal" | cut -f1)) / 1000000 ))
	declare -A T=()
	add() { T[$1]="${T[$1]:-} $2"; }
	for i in $(seq "$RUNS"); do
		log "size $S: online run $i/$RUNS"
		rm -rf "$WORK/repo"
		read -r s r c < <(measure "$HM" backup --repo "$WORK/repo" --host 127.0.0.1 --port "$PG_PORT" \
			--user hive_backup --quiet)
		add bk "$s"; add bk_rss "$r"; add bk_cpu "$c"; add bk_mb "$(du -sm "$WORK/repo" | cut -f1)"
		rm -rf "$WORK/frepo"
		read -r s r c < <(measure "$HM" backup --repo "$WORK/frepo" --host 127.0.0.1 --port "$PG_PORT" \
			--user hive_backup --quiet --zstd-level -1)
		add bkf "$s"; add bkf_cpu "$c"; add bkf_mb "$(du -sm "$WORK/frepo" | cut -f1)"
		rm -rf "$WORK/frepo"
		read -r s c < <(pgbb_our_path 1)
		add pgbbp "$s"; add pgbbp_cpu "$c"
		read -r s c < <(pgbb_our_path level=1,workers=2)
		add pgbbpw "$s"; add pgbbpw_cpu "$c"
		read -r s c < <(pgbb_our_path level=-1,workers=2)
		add pgbbpf "$s"
		rm -rf "$WORK/pg/bb"; mkdir -p "$WORK/pg/bb"; chown 1000:1000 "$WORK/pg/bb"
		t0=$(now)
		docker exec -e PGPASSWORD="$PW" "$NAME" pg_basebackup -h 127.0.0.1 -p 5432 -U hive_backup \
			-D /var/lib/postgresql/data/bb -Ft -X fetch --compress=server-zstd:1 -c fast
		add pgbb "$(since "$t0")"
		rm -rf "$WORK/pg/bb"; mkdir -p "$WORK/pg/bb"; chown 1000:1000 "$WORK/pg/bb"
		t0=$(now)
		docker exec -e PGPASSWORD="$PW" "$NAME" pg_basebackup -h 127.0.0.1 -p 5432 -U hive_backup \
			-D /var/lib/postgresql/data/bb -Ft -X fetch --compress=server-zstd:level=1,workers=2 -c fast
		add pgbbw "$(since "$t0")"
		rm -rf "$WORK/pg/bb"
		ID=$("$HM" backups list --repo "$WORK/repo" --json | /usr/bin/python3 -c \
			'import json,sys; d=json.load(sys.stdin); d=d.get("backups", d) if isinstance(d, dict) else d; print(d[-1]["id"])')
		tar -xOf "$WORK/repo/$ID/backup.tar" base.tar.zst >"$WORK/base.tar.zst" 2>/dev/null ||
			tar -xOf "$(find "$WORK/repo" -name backup.tar | head -1)" base.tar.zst >"$WORK/base.tar.zst"
		rm -rf "$WORK/restored"
		sync -f "$WORK/base.tar.zst"
		# Tool and anchor swap places every run: whichever creates files first after a
		# large deletion pays more (see the note at alternate())
		alternate "$i" restore_ours restore_anchor
		read -r s r _ < <(measure "$HM" backups verify "$ID" --repo "$WORK/repo" --quiet)
		add vf "$s"; add vf_rss "$r"
		rm -rf "$WORK/restored" "$WORK/anchor"
	done
	docker stop -t 30 "$NAME" >/dev/null
	for i in $(seq "$RUNS"); do
		log "size $S: offline run $i/$RUNS"
		rm -rf "$WORK/orepo"
		read -r s r _ < <(measure "$HM" backup --offline --data-dir "$PGDATA_H" --repo "$WORK/orepo" --quiet)
		add snap "$s"; add snap_rss "$r"
		t0=$(now)
		tar -C "$PGDATA_H" -cf - . | zstd -q -1 -T2 >"$WORK/anchor.tar.zst"
		add tz "$(since "$t0")"
		sync -f "$WORK/anchor.tar.zst" # ours is fsync'd before it counts as written
		add tzs "$(since "$t0")"
		OID=$("$HM" backups list --repo "$WORK/orepo" --json | /usr/bin/python3 -c \
			'import json,sys; d=json.load(sys.stdin); d=d.get("backups", d) if isinstance(d, dict) else d; print(d[-1]["id"])')
		rm -rf "$WORK/orestored"
		alternate "$i" orestore_ours orestore_anchor
		rm -rf "$WORK/orestored" "$WORK/oanchor" "$WORK/anchor.tar.zst"
	done
	docker rm -f "$NAME" >/dev/null
	MIG=null
	if [ "${BENCH_MIGRATE:-0}" = 1 ]; then
		log "size $S: tests/bench/migrate.sh --size $S"
		BENCH_JSON="$WORK/migrate-$S.json" "$ROOT/tests/bench/migrate.sh" --size "$S" >&2 || true
		[ -s "$WORK/migrate-$S.json" ] && MIG=$(cat "$WORK/migrate-$S.json")
	fi
	m() { echo "${T[$1]:-}" | median; }
	[ $first = 1 ] || echo "," >>"$WORK/scale.json"
	first=0
	cat >>"$WORK/scale.json" <<JSON
{"size": "$S", "data_mb": $DB_MB, "runs": $RUNS,
 "backup_s": $(m bk), "backup_rss_mb": $(m bk_rss), "pg_basebackup_s": $(m pgbb), "pg_basebackup_workers2_s": $(m pgbbw),
 "backup_cpu_s": $(m bk_cpu), "pg_basebackup_our_path_s": $(m pgbbp), "pg_basebackup_our_path_cpu_s": $(m pgbbp_cpu),
 "pg_basebackup_our_path_workers2_s": $(m pgbbpw), "pg_basebackup_our_path_workers2_cpu_s": $(m pgbbpw_cpu),
 "backup_mb": $(m bk_mb), "backup_fast_s": $(m bkf), "backup_fast_cpu_s": $(m bkf_cpu),
 "backup_fast_mb": $(m bkf_mb), "pg_basebackup_our_path_fast_workers2_s": $(m pgbbpf),
 "backup_fast_runs_s": [$(echo ${T[bkf]} | tr ' ' ',')],
 "backup_runs_s": [$(echo ${T[bk]} | tr ' ' ',')], "pg_basebackup_our_path_runs_s": [$(echo ${T[pgbbp]} | tr ' ' ',')],
 "pg_basebackup_our_path_workers2_runs_s": [$(echo ${T[pgbbpw]} | tr ' ' ',')],
 "restore_s": $(m rs), "restore_rss_mb": $(m rs_rss), "zstd_tar_x_s": $(m zt), "zstd_tar_x_sync_s": $(m zts),
 "verify_s": $(m vf), "verify_rss_mb": $(m vf_rss),
 "snapshot_s": $(m snap), "snapshot_rss_mb": $(m snap_rss), "tar_zstd_s": $(m tz), "tar_zstd_sync_s": $(m tzs),
 "offline_restore_s": $(m ors), "offline_restore_rss_mb": $(m ors_rss),
 "offline_zstd_tar_x_s": $(m ozt), "offline_zstd_tar_x_sync_s": $(m ozts),
 "migrate": $MIG}
JSON
	unset T
done
echo "]" >>"$WORK/scale.json"
/usr/bin/python3 -m json.tool "$WORK/scale.json" >"$SCALE_JSON"
log "JSON in $SCALE_JSON"

# The table (medians; x = tool / anchor).
/usr/bin/python3 - "$SCALE_JSON" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
def f(v): return "" if v is None else ("%.2f" % v if isinstance(v, float) else str(v))
def x(a, b): return "" if a is None or not b else "%.2fx" % (a / b)
print("| size (data dir MB) | backup s (RSS MB) | pg_basebackup s (workers=2) | x | restore s (RSS MB) "
      "| zstd -d \\| tar -x s (+ sync -f) | x (with sync) | verify s (RSS MB) | snapshot s (RSS MB) "
      "| tar \\| zstd -1 -T2 s (+ sync -f) | x | x (with sync) | offline restore s (RSS MB) | zstd -d \\| tar -x s (+ sync -f) "
      "| up downtime s | rollback downtime s |")
print("|" + "---|" * 16)
for r in rows:
    mg = r.get("migrate") or {}
    print("| %s (%s) | %s (%s) | %s (%s) | %s | %s (%s) | %s (%s) | %s | %s (%s) | %s (%s) | %s (%s) | %s | %s | %s (%s) | %s (%s) | %s | %s |" % (
        r["size"], r["data_mb"], f(r["backup_s"]), f(r["backup_rss_mb"]), f(r["pg_basebackup_s"]),
        f(r.get("pg_basebackup_workers2_s")),
        x(r["backup_s"], r["pg_basebackup_s"]), f(r["restore_s"]), f(r["restore_rss_mb"]),
        f(r["zstd_tar_x_s"]), f(r["zstd_tar_x_sync_s"]), x(r["restore_s"], r["zstd_tar_x_sync_s"]),
        f(r["verify_s"]), f(r["verify_rss_mb"]), f(r["snapshot_s"]), f(r["snapshot_rss_mb"]),
        f(r["tar_zstd_s"]), f(r.get("tar_zstd_sync_s")), x(r["snapshot_s"], r["tar_zstd_s"]),
        x(r["snapshot_s"], r.get("tar_zstd_sync_s")), f(r["offline_restore_s"]),
        f(r["offline_restore_rss_mb"]), f(r["offline_zstd_tar_x_s"]), f(r["offline_zstd_tar_x_sync_s"]),
        f(mg.get("up_downtime_seconds")), f(mg.get("rollback_downtime_seconds"))))
    steps = mg.get("up_step_seconds")
    if steps:
        print("|  up by step: " + ", ".join("%s %s s" % (k, f(v)) for k, v in steps.items()) + " |" + " |" * 15)
    steps = mg.get("rollback_step_seconds")
    if steps:
        print("|  rollback by step: " + ", ".join("%s %s s" % (k, f(v)) for k, v in steps.items()) + " |" + " |" * 15)
# Online backup on one path: throughput = the anchor's time / ours (higher is faster).
def tp(anchor, ours): return "" if not anchor or not ours else "%.2fx" % (anchor / ours)
print()
print("| size | backup s (client CPU s) | pg_basebackup our path, server-zstd:1 s (CPU s) "
      "| same, workers=2 s (CPU s) | backup throughput / pg_basebackup's | pg_basebackup workers=2 / "
      "its default | backup / pg_basebackup workers=2 |")
print("|" + "---|" * 7)
for r in rows:
    if r.get("pg_basebackup_our_path_s") is None:
        continue
    print("| %s | %s (%s) | %s (%s) | %s (%s) | %s | %s | %s |" % (
        r["size"], f(r["backup_s"]), f(r.get("backup_cpu_s")), f(r["pg_basebackup_our_path_s"]),
        f(r.get("pg_basebackup_our_path_cpu_s")), f(r.get("pg_basebackup_our_path_workers2_s")),
        f(r.get("pg_basebackup_our_path_workers2_cpu_s")),
        tp(r["pg_basebackup_our_path_s"], r["backup_s"]),
        tp(r["pg_basebackup_our_path_s"], r.get("pg_basebackup_our_path_workers2_s")),
        tp(r.get("pg_basebackup_our_path_workers2_s"), r["backup_s"])))
print()
print("| size | backup --zstd-level -1 s (client CPU s) | repository MB: level 1, level -1 "
      "| pg_basebackup our path, level=-1,workers=2 s | fast backup throughput / pg_basebackup's default |")
print("|" + "---|" * 5)
for r in rows:
    if r.get("backup_fast_s") is None:
        continue
    print("| %s | %s (%s) | %s, %s | %s | %s |" % (
        r["size"], f(r["backup_fast_s"]), f(r.get("backup_fast_cpu_s")), f(r.get("backup_mb")),
        f(r.get("backup_fast_mb")), f(r.get("pg_basebackup_our_path_fast_workers2_s")),
        tp(r.get("pg_basebackup_our_path_s"), r["backup_fast_s"])))
PY
