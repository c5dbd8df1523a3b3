#!/bin/bash
# S3 and encryption benchmark (issue 12; not part of `make test`): for one ~1 GB PostgreSQL 15
# cluster (pgbench -i, scale 70), the wall time and peak RSS of
#   hive-migrate backup   to a local repository, to S3, to S3 encrypted (key file)
#   pgBackRest 2.45 full  to S3, to S3 encrypted (aes-256-cbc), zst:1, process-max 2
# and of the restore from each. The S3 server is the test bed's radosgw (make objstore, shared
# container ho-ceph, a bucket hx-bench-* of our own); both tools reach it over the same TLS
# proxy (socat, a throwaway self-signed certificate given to both as CA), since pgBackRest
# speaks only https. The machine may be shared: each round runs every case once, one after
# the other (tool and anchor interleaved), RUNS rounds (default 3), medians reported.
# Ports 34532 (PostgreSQL), 34543 (TLS proxy); data under $BENCH_DIR (/tmp/hx-bench.*).
# Needs: make, make tools, socat (apt-get install socat), pgbackrest, postgresql-15.
# Output: a markdown table on stdout (docs/benchmarks.md, "S3 and encryption (issue 12)").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HM="$ROOT/hive-migrate"
TOOL="$ROOT/build/tests/hm-storage-tool"
RUNS=${RUNS:-3}
SCALE=${SCALE:-70}
PGBIN=/usr/lib/postgresql/15/bin
PORT=34532
TLS_PORT=34543
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/hx-bench.XXXXXX)}
BUCKET="hx-bench-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[ -x "$HM" ] && [ -x "$TOOL" ] || { echo "build first: make && make tools" >&2; exit 2; }
command -v socat >/dev/null || { echo "needs socat (apt-get install socat)" >&2; exit 2; }
command -v pgbackrest >/dev/null || { echo "needs pgbackrest (apt-get install pgbackrest)" >&2; exit 2; }
eval "$("$ROOT/tests/objstore/ceph-setup.sh" start | grep -E '^(endpoint|credentials)=')"
KEY=$(awk -F' *= *' '$1=="aws_access_key_id"{print $2}' "$credentials")
SECRET=$(awk -F' *= *' '$1=="aws_secret_access_key"{print $2}' "$credentials")
chown postgres "$BENCH_DIR"
chmod 755 "$BENCH_DIR"
PROXY_PID=""
cleanup() {
	su postgres -c "$PGBIN/pg_ctl -D $BENCH_DIR/data -m fast stop" >/dev/null 2>&1 || true
	"$TOOL" --endpoint "$endpoint" --credentials-file "$credentials" "s3://$BUCKET" sweep >/dev/null 2>&1 || true
	"$TOOL" --endpoint "$endpoint" --credentials-file "$credentials" "s3://$BUCKET" rmdir "" >/dev/null 2>&1 || true
	"$TOOL" --endpoint "$endpoint" --credentials-file "$credentials" "s3://$BUCKET" rb >/dev/null 2>&1 || true
	[ -z "$PROXY_PID" ] || kill "$PROXY_PID" 2>/dev/null || true
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
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- TLS proxy in front of radosgw, bucket, keys
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$BENCH_DIR/tls.key" -out "$BENCH_DIR/tls.pem" >/dev/null 2>&1
chmod 644 "$BENCH_DIR/tls.pem"
socat "OPENSSL-LISTEN:$TLS_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$BENCH_DIR/tls.pem,key=$BENCH_DIR/tls.key,verify=0" \
	"TCP:${endpoint#http://}" &
PROXY_PID=$!
S3URL="https://127.0.0.1:$TLS_PORT"
"$TOOL" --endpoint "$endpoint" --credentials-file "$credentials" "s3://$BUCKET" mb >/dev/null
(umask 077; head -c 32 /dev/urandom > "$BENCH_DIR/hm.key")
CIPHER_PASS=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
S3OPTS=(--s3-endpoint "$S3URL" --s3-ca-file "$BENCH_DIR/tls.pem" --s3-credentials-file "$credentials")

# ---- PostgreSQL 15, archive_command to both pgBackRest repositories
su postgres -c "$PGBIN/initdb -D $BENCH_DIR/data -U postgres --auth=trust -k" >/dev/null
mkdir -p "$BENCH_DIR"/{pgbr-log,pgbr-lock,spool}
chown postgres "$BENCH_DIR"/pgbr-*
(umask 077; cat > "$BENCH_DIR/pgbackrest.conf" <<CONF
[global]
log-path=$BENCH_DIR/pgbr-log
lock-path=$BENCH_DIR/pgbr-lock
log-level-console=warn
compress-type=zst
compress-level=1
start-fast=y
process-max=2
repo1-type=s3
repo1-path=/pgbr-plain
repo1-s3-bucket=$BUCKET
repo1-s3-endpoint=localhost
repo1-storage-port=$TLS_PORT
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-storage-ca-file=$BENCH_DIR/tls.pem
repo1-s3-key=$KEY
repo1-s3-key-secret=$SECRET
repo1-retention-full=100
repo2-type=s3
repo2-path=/pgbr-enc
repo2-s3-bucket=$BUCKET
repo2-s3-endpoint=localhost
repo2-storage-port=$TLS_PORT
repo2-s3-region=us-east-1
repo2-s3-uri-style=path
repo2-storage-ca-file=$BENCH_DIR/tls.pem
repo2-s3-key=$KEY
repo2-s3-key-secret=$SECRET
repo2-retention-full=100
repo2-cipher-type=aes-256-cbc
repo2-cipher-pass=$CIPHER_PASS
[bench]
pg1-path=$BENCH_DIR/data
pg1-port=$PORT
pg1-socket-path=$BENCH_DIR
CONF
)
chown postgres "$BENCH_DIR/pgbackrest.conf"
cat >> "$BENCH_DIR/data/postgresql.conf" <<CONF
port=$PORT
listen_addresses=''
unix_socket_directories='$BENCH_DIR'
wal_level=replica
max_wal_senders=5
shared_buffers=256MB
archive_mode=on
archive_command='pgbackrest --config=$BENCH_DIR/pgbackrest.conf --stanza=bench archive-push %p'
CONF
su postgres -c "$PGBIN/pg_ctl -D $BENCH_DIR/data -l $BENCH_DIR/pg.log -w start" >/dev/null
su postgres -c "$PGBIN/pgbench -h $BENCH_DIR -p $PORT -U postgres -i -s $SCALE -q postgres" >/dev/null 2>&1
psql -h "$BENCH_DIR" -p "$PORT" -U postgres -qc "CHECKPOINT" >/dev/null
PGBR="pgbackrest --config=$BENCH_DIR/pgbackrest.conf --stanza=bench"
su postgres -c "$PGBR stanza-create" >/dev/null
DB_MB=$(( ($(du -sb "$BENCH_DIR/data" | cut -f1) - $(du -sb "$BENCH_DIR/data/pg_wal" | cut -f1)) / 1000000 ))
echo "data directory: $DB_MB MB; bucket $BUCKET via $S3URL; $RUNS rounds" >&2

HMB=(--host "$BENCH_DIR" --port "$PORT" --user postgres --quiet)
declare -A SECS RSS
run_case() { # name command...
	local name=$1 s r
	shift
	read -r s r < <(measure "$@")
	SECS[$name]="${SECS[$name]:-} $s"
	RSS[$name]="${RSS[$name]:-} $r"
	echo "  $name: $s s, $((r / 1024)) MB" >&2
}
fresh() { rm -rf "$BENCH_DIR/restored"; mkdir -p "$BENCH_DIR/restored"; chown postgres "$BENCH_DIR/restored"; chmod 700 "$BENCH_DIR/restored"; }

for round in $(seq "$RUNS"); do
	echo "round $round" >&2
	rm -rf "$BENCH_DIR/hm-local"
	run_case "backup: hive-migrate, local" "$HM" backup "${HMB[@]}" --repo "$BENCH_DIR/hm-local"
	run_case "backup: hive-migrate, S3" "$HM" backup "${HMB[@]}" --repo "s3://$BUCKET/hm-plain" "${S3OPTS[@]}"
	run_case "backup: pgBackRest, S3" su postgres -c "$PGBR --repo=1 --type=full backup"
	run_case "backup: hive-migrate, S3 encrypted" "$HM" backup "${HMB[@]}" --repo "s3://$BUCKET/hm-enc" "${S3OPTS[@]}" \
		--encrypt-key-file "$BENCH_DIR/hm.key"
	run_case "backup: pgBackRest, S3 encrypted" su postgres -c "$PGBR --repo=2 --type=full backup"

	rm -rf "$BENCH_DIR/restored"
	run_case "restore: hive-migrate, local" "$HM" backups restore latest --repo "$BENCH_DIR/hm-local" --to "$BENCH_DIR/restored"
	rm -rf "$BENCH_DIR/restored"
	run_case "restore: hive-migrate, S3" env TMPDIR="$BENCH_DIR/spool" "$HM" backups restore latest \
		--repo "s3://$BUCKET/hm-plain" "${S3OPTS[@]}" --to "$BENCH_DIR/restored"
	fresh
	run_case "restore: pgBackRest, S3" su postgres -c "$PGBR --repo=1 --pg1-path=$BENCH_DIR/restored restore"
	rm -rf "$BENCH_DIR/restored"
	run_case "restore: hive-migrate, S3 encrypted" env TMPDIR="$BENCH_DIR/spool" "$HM" backups restore latest \
		--repo "s3://$BUCKET/hm-enc" "${S3OPTS[@]}" --to "$BENCH_DIR/restored" --encrypt-key-file "$BENCH_DIR/hm.key"
	fresh
	run_case "restore: pgBackRest, S3 encrypted" su postgres -c "$PGBR --repo=2 --pg1-path=$BENCH_DIR/restored restore"
	rm -rf "$BENCH_DIR/restored"
done

echo "| case (PostgreSQL 15, $DB_MB MB data dir without pg_wal; pgBackRest zst:1, process-max 2) | seconds (median of $RUNS) | all runs | peak RSS MB (median) |"
echo "|---|---|---|---|"
for name in "backup: hive-migrate, local" "backup: hive-migrate, S3" "backup: pgBackRest, S3" \
	"backup: hive-migrate, S3 encrypted" "backup: pgBackRest, S3 encrypted" \
	"restore: hive-migrate, local" "restore: hive-migrate, S3" "restore: pgBackRest, S3" \
	"restore: hive-migrate, S3 encrypted" "restore: pgBackRest, S3 encrypted"; do
	s=$(echo "${SECS[$name]}" | median)
	r=$(echo "${RSS[$name]}" | median)
	printf '| %s | %s | %s | %s |\n' "$name" "$s" "$(echo "${SECS[$name]}" | sed 's/^ //')" "$((r / 1024))"
done
