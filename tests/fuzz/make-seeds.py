#!/usr/bin/env python3
"""Writes the crafted seeds of the archive fuzz targets (run from anywhere; idempotent):
fuzz_server_archive.seeds/ (server archives: hard links, devices, FIFOs, set-id files, long
and odd names, huge sizes, members below symlinks), fuzz_archive_dir.seeds/ (offline
archives, valid and hostile with agreeing manifests) and the backup_manifest seeds of
fuzz_backup_formats.seeds/ (ill-typed fields, huge and empty WAL ranges). The archives are
built by tests/e2e/hostile_repo.py, the same builder the hostile-input e2e tests use."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
import hostile_repo as h  # noqa: E402


def write(dirname, name, data):
    d = HERE / dirname
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


def server_seeds():
    base = h.pgdata_entries()
    base[-1].data = b"\0" * 8192  # keep the seeds small
    base[3].data = b"\1" * 512
    cases = {
        "plain": [],
        "hardlink": [h.Entry("evil", "h", target="/etc/passwd")],
        "hardlink-pax-data": [h.Entry("evil", "h", target="PG_VERSION", data=b"owned\n", pax=True)],
        "chardev": [h.Entry("null", "c", dev=(1, 3), mode=0o666)],
        "blockdev": [h.Entry("sda", "b", dev=(8, 0), mode=0o666)],
        "fifo": [h.Entry("fifo", "p")],
        "setuid": [h.Entry("sh", data=b"#!/bin/sh\n", mode=0o4755)],
        "below-symlink": [h.Entry("l", "l", target="/tmp"), h.Entry("l/x", data=b"x")],
        "dotdot": [h.Entry("../escape", data=b"x")],
        "absolute": [h.Entry("/abs", data=b"x")],
        "dot-symlink": [h.Entry(".", "l", target="/")],
        "long-names": [h.Entry("d" * 200 + "/" + "f" * 250, data=b"x"),
                       h.Entry("l" * 120, "l", target="t" * 300)],
        "odd-names": [h.Entry(b"caf\xc3\xa9", data=b"1", raw=True), h.Entry(b"bad\xff", data=b"2", binary=True),
                      h.Entry(b"a//b", data=b"3"), h.Entry(b"./x/./y", data=b"4"), h.Entry(b"tab\tnl\n", data=b"5")],
        "duplicate": [h.Entry("PG_VERSION", "l", target="/etc/shadow")],
        "huge-size": [h.Entry("huge", data=b"x" * 10, size=0o77777777777)],
    }
    for name, extra in cases.items():
        t = h.tar(base + extra, end=False)
        write("fuzz_server_archive.seeds", name + ".tar", t)
    write("fuzz_server_archive.seeds", "plain.tar.zst", h.zstd(h.tar(base)))
    # a base-256 size field (8 GiB and more) with little data behind it
    hdr = bytearray(h._header(b"big", b"0", 0))
    hdr[124:136] = b"\x80" + (8 << 30).to_bytes(11, "big")
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    write("fuzz_server_archive.seeds", "base256-size.tar", bytes(hdr) + b"x" * 512)


def archive_dir_seeds():
    items = h.pgdata_items()
    write("fuzz_archive_dir.seeds", "valid.tar.zst", h.offline_archive(items))
    write("fuzz_archive_dir.seeds", "names.tar.zst", h.offline_archive(
        items + [h.offline_entry(b"caf\xc3\xa9", "file", b"1"), h.offline_entry(b"bad\xff", "file", b"2"),
                 h.offline_entry(b"link\xfe", "symlink", target=b"\xff\xfe")]))
    write("fuzz_archive_dir.seeds", "setuid.tar.zst",
          h.offline_archive(items + [h.offline_entry("sh", "file", b"x", mode=0o4755)]))
    write("fuzz_archive_dir.seeds", "below-symlink.tar.zst", h.offline_archive(
        items + [h.offline_entry("l", "symlink", target="/tmp"), h.offline_entry("l/x", "file", b"x")]))
    write("fuzz_archive_dir.seeds", "top-file.tar.zst", h.offline_archive([h.offline_entry(".", "file", b"x")]))
    write("fuzz_archive_dir.seeds", "plain.tar", h.tar([h.Entry("hive-migrate/metadata.json", data=b"{}")]))


def manifest_seeds():
    ents = h.pgdata_entries()
    files = h.manifest_files(ents)
    write("fuzz_backup_formats.seeds", "manifest-null-algorithm", h.pg_manifest(
        None, raw_files='{ "Path": "a", "Size": 1, "Checksum-Algorithm": null, "Checksum": "00" }'))
    write("fuzz_backup_formats.seeds", "manifest-huge-range",
          h.pg_manifest(files, wal_ranges=((1, "0/0", "FFFFFFFF/FFFFFFFF"),)))
    write("fuzz_backup_formats.seeds", "manifest-empty-ranges", h.pg_manifest(files, raw_ranges=""))
    write("fuzz_backup_formats.seeds", "manifest-encoded-path", h.pg_manifest([(b"bad\xff", b"x")], version=2))


if __name__ == "__main__":
    server_seeds()
    archive_dir_seeds()
    manifest_seeds()
