#!/usr/bin/env bash
# Entry point of the test bed's Ceph container: bootstraps a new one-monitor, one-OSD cluster
# into /var/lib/ho-ceph on every start (fresh fsid, monmap, mon mkfs, OSD mkfs on a sparse
# BlueStore file; about 20 s), then runs radosgw on 0.0.0.0:7480. The cluster is never reused:
# a cluster kept from an earlier run can come back full (OSD_FULL after interrupted runs left
# objects behind) or half-written (a machine stopped mid-write), and then radosgw never answers.
# Tests make their own buckets and the set-up script makes the test user, so nothing is lost. The container ends when any daemon ends (the host script starts it again);
# SIGTERM stops radosgw, the OSD and the monitor in that order.
# Configuration choices and their reasons: shared notes, object-storage.md.
set -euo pipefail
D=/var/lib/ho-ceph
export CEPH_CONF=$D/ceph.conf
log() { printf 'ceph-run: %s\n' "$*" >&2; }
mkdir -p "$D/run" "$D/log" "$D/mon" "$D/osd"
chmod 0700 "$D"

pids=()
stop_all() {
  trap - TERM INT
  log "stopping"
  # Reverse start order: radosgw, OSD, monitor; each gets SIGTERM, then 20 s.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[$i]}" 2>/dev/null || true
  done
  exit 0
}
trap stop_all TERM INT

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.2
  done
}

write_conf() {
  local fsid=$1
  cat > "$CEPH_CONF.tmp" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = 6800
ms bind port max = 6830
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 5
debug rgw = 0/5
debug ms = 0/0
[osd]
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 16G
bluestore block path = $D/osd-block-\$id
osd memory target = 1G
[client.rgw]
rgw frontends = beast endpoint=0.0.0.0:7480
rgw thread pool size = 64
rgw dns name = localhost
# Deleted objects give their space back within minutes, not after the default 2 hours: every
# test run writes and deletes a few hundred MB on a 16 GB (sparse) OSD.
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF
  mv "$CEPH_CONF.tmp" "$CEPH_CONF"
}

start_mon() {
  ceph-mon -i a -f &
  pids+=($!)
  wait_for "the monitor" 60 timeout 5 ceph mon stat
}

osd_up() { ceph osd stat 2>/dev/null | grep -q ' 1 up'; }

log "bootstrapping a new cluster in $D"
rm -rf "$D/mon" "$D/osd" "$D"/osd-block-* "$D/monmap" "$D/osd-id" "$D/bootstrapped" "$D/log"/*
mkdir -p "$D/mon" "$D/osd"
fsid=$(cat /proc/sys/kernel/random/uuid)
write_conf "$fsid"
monmaptool --create --fsid "$fsid" --addv a '[v2:127.0.0.1:3300]' "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap"
start_mon
uuid=$(cat /proc/sys/kernel/random/uuid)
id=$(ceph osd new "$uuid")
mkdir -p "$D/osd/ceph-$id"
ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
echo "$id" > "$D/osd-id"
id=$(cat "$D/osd-id")
ceph-osd -i "$id" -f &
pids+=($!)
wait_for "the OSD" 120 osd_up
radosgw -n client.rgw -f &
pids+=($!)
wait_for "radosgw" 180 curl -fsS -o /dev/null http://127.0.0.1:7480/
log "ready: radosgw on 0.0.0.0:7480"
# End with the first daemon that ends (the host script restarts the container).
set +e
wait -n "${pids[@]}"
rc=$?
log "a daemon ended (exit $rc); stopping the others"
stop_all
