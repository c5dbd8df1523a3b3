#!/usr/bin/python3
"""Draw tests/bench/scale.sh's JSON (a list, one object per data size) into a PNG: restore,
snapshot and backup seconds against the data directory's size, each beside its anchor, and
up/rollback downtime where the run had them (migrate.sh's keys; absent keys are skipped).

Usage: tests/bench/plot.py [SCALE_JSON [OUT_PNG]]
(defaults docs/benchmarks-scale.json and docs/benchmarks-scale.png). Needs python3-matplotlib
(Debian's package); only `make bench` uses it.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def series(rows, key):
    """(sizes, values) of the rows that have key (in the row or in its "migrate" object)."""
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v is None:
            v = (r.get("migrate") or {}).get(key)
        if isinstance(v, (int, float)):
            xs.append(r["data_mb"])
            ys.append(v)
    return xs, ys


def main():
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/benchmarks-scale.json"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs/benchmarks-scale.png"
    rows = sorted(json.loads(src.read_text()), key=lambda r: r["data_mb"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for key, label, style in [
        ("restore_s", "backups restore (online backup)", "o-"),
        ("zstd_tar_x_sync_s", "anchor: zstd -d | tar -x; sync -f", "o--"),
        ("offline_restore_s", "backups restore (offline = snapshot archive)", "s-"),
        ("offline_zstd_tar_x_sync_s", "anchor: same, of tar | zstd archive", "s--"),
        ("verify_s", "backups verify (online backup)", "^-"),
    ]:
        xs, ys = series(rows, key)
        if xs:
            left.plot(xs, ys, style, label=label)
    left.set_title("Time to recover")
    for key, label, style in [
        ("backup_s", "backup (online)", "o-"),
        ("pg_basebackup_s", "anchor: pg_basebackup server-zstd:1", "o--"),
        ("snapshot_s", "snapshot (backup --offline, up's code)", "s-"),
        ("tar_zstd_s", "anchor: tar | zstd -1 -T2", "s--"),
        ("up_downtime_seconds", "up downtime", "D-"),
        ("rollback_downtime_seconds", "rollback downtime", "v-"),
    ]:
        xs, ys = series(rows, key)
        if xs:
            right.plot(xs, ys, style, label=label)
    right.set_title("Backup, snapshot and downtime")
    for ax in (left, right):
        ax.set_xlabel("data directory without pg_wal (MB)")
        ax.set_ylabel("seconds (median)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
    fig.suptitle("hive-migrate against data size (tests/bench/scale.sh; shared 2-core machine)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
