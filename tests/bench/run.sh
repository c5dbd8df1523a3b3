#!/usr/bin/env bash
# `make bench`: every benchmark, each beside its anchors in the same run (results and method
# in docs/benchmarks.md). Not part of `make test`: it generates data sets up to 2 GB.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
tests/bench/unified.sh
tests/bench/migrate.sh
tests/bench/backup.sh
tests/bench/major.sh
tests/bench/s3.sh
# time to recover against data size (200MB, 1GB, 2GB), then its plot
BENCH_MIGRATE=${BENCH_MIGRATE:-1} tests/bench/scale.sh
/usr/bin/python3 tests/bench/plot.py docs/benchmarks-scale.json docs/benchmarks-scale.png
