#!/usr/bin/python3
"""Draw tests/bench/scale.sh's JSON (a list, one object per data size) into a PNG: restore,
snapshot and backup seconds against the data directory's size, each beside its anchor, and
up/rollback downtime where the run had them (migrate.sh's keys; absent keys are skipped).

Usage: tests/bench/plot.py [--migrate SIZE=MIGRATE_JSON]... [SCALE_JSON [OUT_PNG]]
(defaults docs/benchmarks-scale.json and docs/benchmarks-scale.png). --migrate puts the JSON
of a separate `BENCH_JSON=F tests/bench/migrate.sh --size SIZE` run in the row of that size
(scale.sh with BENCH_MIGRATE=1 does the same within its own run); the title then says so. Needs python3-matplotlib
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
    args, extra = list(sys.argv[1:]), {}
    while len(args) >= 2 and args[0] == "--migrate":
        size, _, path = args[1].partition("=")
        if not path:
            sys.exit(f"plot.py: --migrate wants SIZE=FILE, got {args[1]!r}")
        extra[size] = json.loads(Path(path).read_text())
        del args[:2]
    src = Path(args[0]) if len(args) > 0 else ROOT / "docs/benchmarks-scale.json"
    out = Path(args[1]) if len(args) > 1 else ROOT / "docs/benchmarks-scale.png"
    rows = sorted(json.loads(src.read_text()), key=lambda r: r["data_mb"])
    for r in rows:
        if r.get("size") in extra:
            r["migrate"] = extra.pop(r["size"])
    if extra:
        sys.exit(f"plot.py: no row of size {', '.join(extra)} in {src}")
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
        ("up_downtime_seconds", "up downtime (stop begun -> API healthy)", "D-"),
        ("up_verified_seconds", "up: data verified equal (same start)", "D:"),
        ("up_no_precopy_downtime_seconds", "up --no-precopy downtime", "x-"),
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
    title = "hive-migrate against data size (tests/bench/scale.sh, one run, tool and anchor interleaved; 2-core machine)"
    if any(a == "--migrate" for a in sys.argv):
        title += "\nup/rollback series: separate migrate.sh runs (docs/benchmarks.md)"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
