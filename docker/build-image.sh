#!/usr/bin/env bash
# Builds the unified image (default localhost/hive-unified:17) idempotently: a SHA-256 over the
# build inputs (docker/common, docker/app, .dockerignore and this script) is stored as the image
# label org.hive.context-hash; when the image tagged IMAGE carries that label the build is
# skipped. Uses podman when present, else docker; never pulls (--pull=false), so
# FROM debian:trixie-slim resolves to the local base image.
# Usage: docker/build-image.sh [--force] [--print-hash]     env: HIVE_IMAGE
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=${HIVE_IMAGE:-localhost/hive-unified:17}
LABEL=org.hive.context-hash
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
if command -v podman >/dev/null 2>&1; then ENG=podman; else ENG=docker; fi
force=0 print=0
for a in "$@"; do
  case $a in
    --force) force=1 ;;
    --print-hash) print=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

# Hash of every input file: relative path and content, in a stable order.
hash=$(cd "$HERE" && find common app .dockerignore build-image.sh -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
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
$ENG build "${fmt[@]}" --pull=false -f "$HERE/common/Dockerfile.unified" --label "$LABEL=$hash" -t "$IMAGE" "$HERE" >&2
echo "build-image.sh: built $IMAGE" >&2
