#!/usr/bin/env bash
# `make bench`: every benchmark, each beside its anchors in the same run (results and method
# in docs/benchmarks.md). Not part of `make test`: it generates a 1 GB data set.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
tests/bench/unified.sh
tests/bench/migrate.sh
tests/bench/backup.sh
tests/bench/major.sh
tests/bench/s3.sh
