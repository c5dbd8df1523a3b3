#!/usr/bin/env bash
# `make demo`: on a fresh machine, installs what it needs, builds hive-migrate, creates a
# sample split agent stack with sample data, checks it, migrates it onto the unified
# container, shows it healthy, and takes and verifies a backup.
# The sample stack lives in ./demo-work (remove it with `make demo-clean`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${HIVE_DEMO_DIR:-$ROOT/demo-work}
# Each phase is timed; the totals are printed at the end.
phases=() phase='' phase_t0=0
finish_phase() {
  [ -n "$phase" ] || return 0
  local t=$(( $(date +%s%N) / 1000000 - phase_t0 ))
  printf '   (%d.%01d s)\n' $((t / 1000)) $((t % 1000 / 100))
  phases+=("$(printf '%7d.%01d s  %s' $((t / 1000)) $((t % 1000 / 100)) "$phase")")
}
step() {
  finish_phase
  phase=$1 phase_t0=$(( $(date +%s%N) / 1000000 ))
  printf '\n\033[1m== %s\033[0m\n' "$*"
}

step "installing packages and preparing the container engine"
tests/install-deps.sh
eval "export $(tests/engine-setup.sh | tail -n 1)"

step "building hive-migrate and the images"
make -s hive-migrate
fixtures/split/build-images.sh 17 api
docker/build-image.sh

if [ -d "$WORK" ]; then
  step "removing the previous demo in $WORK"
  docker compose --project-directory "$WORK" down -t 30 >/dev/null 2>&1 || true
  docker stop -t 30 hive-agent-unified >/dev/null 2>&1 || true
  docker rm -f hive-agent-unified >/dev/null 2>&1 || true
  rm -rf "$WORK"
fi

step "creating a sample split agent stack in $WORK"
fixtures/split/new-stack.sh "$WORK" --profile agent
docker compose --project-directory "$WORK" up -d
deadline=$((SECONDS + 180))
until curl -fsS http://127.0.0.1:38886/api/v1/health >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    echo "split stack did not become healthy; its API says: $(curl -sS http://127.0.0.1:38886/api/v1/health 2>&1)"
    echo "hint: 'Name or service not known' means compose's service names do not resolve (tests/engine-setup.sh sets up DNS)"
    exit 1
  fi
  sleep 1
done
echo "split stack healthy: $(curl -fsS http://127.0.0.1:38886/api/v1/health)"

step "filling it with sample hive data"
PGPASSWORD=$(sed -n 's/^AGENT_DB_PASSWORD=//p' "$WORK/.env") \
  /usr/bin/python3 fixtures/generate-data.py --dsn "host=127.0.0.1 port=35532 user=agent dbname=hive_agent" --size 20MB

step "hive-migrate check (the stack is running, so expect a server-running warning: exit 10)"
rc=0; ./hive-migrate check --stack "$WORK" --profile agent --target-major 17 || rc=$?
[ "$rc" -le 10 ] || { echo "check says the unified container cannot run on this stack (exit $rc)"; exit 1; }

step "hive-migrate up --profile agent"
# A password for the unified container's backup role, kept in a 0600 file (never on argv).
install -d -m 0700 "$WORK/.hive-migrate"
( umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$WORK/.hive-migrate/backup-password" )
./hive-migrate up --stack "$WORK" --profile agent --yes \
  --backup-password-file "$WORK/.hive-migrate/backup-password"

step "the unified container"
docker ps --filter name=hive-agent-unified --format '{{.Names}}  {{.Status}}'
echo "health: $(curl -fsS http://127.0.0.1:38886/api/v1/health)"

step "hive-migrate backup (online, into $WORK/backups)"
./hive-migrate backup --profile agent --repo "$WORK/backups" --password-file "$WORK/.hive-migrate/backup-password"
./hive-migrate backups list --repo "$WORK/backups"
id=$(./hive-migrate backups list --repo "$WORK/backups" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
./hive-migrate backups verify "$id" --repo "$WORK/backups" --restore-test
./hive-migrate status --repo "$WORK/backups"

finish_phase
printf '\n\033[1m== done: the agent stack runs as one unified container\033[0m\n'
echo "time per phase:"
printf '%s\n' "${phases[@]}"
echo
echo "roll back to the split stack:  ./hive-migrate rollback --stack $WORK --profile agent"
echo "remove the demo:               make demo-clean"
