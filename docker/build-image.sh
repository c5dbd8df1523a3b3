#!/usr/bin/env bash
# Builds the unified image idempotently: localhost/hive-unified:17 (PostgreSQL 17, Debian
# trixie) by default, localhost/hive-unified:18 (PostgreSQL 18, Debian forky) with --major 18.
# A SHA-256 over the build inputs (docker/common, docker/app, .dockerignore, this script and
# the major) is stored as the image label org.hive.context-hash; when the image tagged IMAGE
# carries that label the build is skipped. Uses podman when present, else docker; never pulls
# (--pull=false), so FROM debian:SUITE-slim resolves to the local base image.
# Usage: docker/build-image.sh [--major 17|18] [--force] [--print-hash]   env: HIVE_IMAGE, HIVE_PG_MAJOR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LABEL=org.hive.context-hash
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
if command -v podman >/dev/null 2>&1; then ENG=podman; else ENG=docker; fi
force=0 print=0 major=${HIVE_PG_MAJOR:-17}
while [ $# -gt 0 ]; do
  case $1 in
    --force) force=1 ;;
    --print-hash) print=1 ;;
    --major) [ $# -ge 2 ] || { echo "build-image.sh: --major needs 17 or 18" >&2; exit 2; }
             major=$2; shift ;;
    --major=*) major=${1#--major=} ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
# The suite that ships this major with pgvector (bookworm has no pgvector, no suite here has 16).
case $major in
  17) suite=trixie apt_opts= ;;
  18) suite=forky apt_opts="-o Acquire::Check-Valid-Until=false" ;;  # testing: its Release expires
  *) echo "build-image.sh: PostgreSQL $major is not supported (use --major 17 or 18)" >&2; exit 2 ;;
esac
IMAGE=${HIVE_IMAGE:-localhost/hive-unified:$major}

# Hash of every input file: relative path and content, in a stable order.
hash=$(cd "$HERE" && find common app .dockerignore build-image.sh -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | { cat; echo "major=$major suite=$suite"; } | sha256sum | cut -c1-64)
if [ $print = 1 ]; then echo "$hash"; exit 0; fi

exec 9>"/tmp/hive-unified-build.lock"
flock 9
if [ $force = 0 ]; then
  # Only the tag itself counts: images derived FROM it (tests build e.g. :broken) inherit the
  # label, so a search by label could point the tag at one of them. A rebuild after the tag
  # moved away is fast anyway (layer cache).
  have=$($ENG image inspect --format "{{ index .Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
  derived=$($ENG image inspect --format '{{ index .Labels "org.hive.derived" }}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$hash" ] && [ -z "$derived" ]; then
    echo "build-image.sh: $IMAGE is up to date ($LABEL=${hash:0:12})" >&2
    exit 0
  fi
fi
echo "build-image.sh: building $IMAGE ($LABEL=${hash:0:12})" >&2
fmt=(); [ $ENG = podman ] && fmt=(--format docker)
$ENG build "${fmt[@]}" --pull=false -f "$HERE/common/Dockerfile.unified" --build-arg "PG_MAJOR=$major" \
  --build-arg "DEBIAN_SUITE=$suite" --build-arg "APT_UPDATE_OPTS=$apt_opts" --label "$LABEL=$hash" -t "$IMAGE" "$HERE" >&2
echo "build-image.sh: built $IMAGE" >&2
