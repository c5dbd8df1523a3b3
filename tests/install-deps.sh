#!/usr/bin/env bash
# Installs every Debian package hive-migrate needs to build, test, demo and benchmark
# (libcurl, libsodium and libxml2: the S3 repository and encryption at rest),
# skipping what is already installed. Used by .ci/run and `make demo`.
set -euo pipefail
pkgs=(
  gcc make pkg-config clang clang-format libclang-rt-14-dev valgrind
  libpq-dev libarchive-dev uuid-dev libjson-c-dev libssl-dev libcmocka-dev
  libcurl4-openssl-dev libsodium-dev libxml2-dev
  python3 python3-pytest python3-psycopg
  postgresql-15 postgresql-client-15 zstd curl
  podman runc debootstrap uidmap
  pgbackrest time python3-matplotlib socat
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
