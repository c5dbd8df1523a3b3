"""Crafted backup repositories for the hostile-input tests (test_hostile*.py,
test_file_names.py). No server and no container: the archives are written here byte by
byte, with every digest consistent (member SHA-256s, backup.json, the embedded copy,
PostgreSQL's Manifest-Checksum and per-file CRC-32C, the offline manifest's SHA-256s), so
that only a rule about what an archive may hold can refuse them.

Online backups: REPO/<id>/backup.tar = ustar of base.tar.zst, backup_manifest, backup.json
(docs/backup.md). Offline backups: REPO/<id>/data.tar.zst = pax + zstd of
hive-migrate/metadata.json, data/..., hive-migrate/manifest.json (common/archive_dir.h).
Names are bytes everywhere (str is encoded as UTF-8)."""
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

WAL_SEG = 1 << 20  # 1 MiB WAL segments keep the crafted archives small
START_TIME = 1795738500  # 2026-11-27T00:15:00Z


def b(s):
    return s if isinstance(s, bytes) else s.encode()


# --- CRC-32C as backup_manifest writes it (common/crc32c.h) ---------------------------------
def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c_hex(data):
    c = 0xFFFFFFFF
    for x in data:
        c = _CRC[(c ^ x) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return c.to_bytes(4, "little").hex()


# --- tar, written by hand so that every field is under the test's control ------------------
def _octal(v, width):
    return b"%0*o\0" % (width - 1, v)


def _pax(records, name=b"./PaxHeaders/x"):
    body = b""
    for k, v in records.items():
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(b"%d" % n) + len(rec) != n:
            n += 1
        body += b"%d" % n + rec
    return _header(name[:99], b"x", len(body)) + _pad(body)


def _pad(data):
    return data + b"\0" * (-len(data) % 512)


def _header(name, typeflag, size, mode=0o644, uid=0, gid=0, mtime=START_TIME, linkname=b"",
            devmajor=0, devminor=0):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


TYPES = {"f": b"0", "h": b"1", "l": b"2", "c": b"3", "b": b"4", "d": b"5", "p": b"6"}


class Entry:
    """One tar member. kind: f file, d dir, l symlink, h hardlink, c/b char/block device,
    p FIFO. data: file bytes (also for a hardlink "with data"). pax: force a pax header;
    binary: mark names as raw bytes (hdrcharset=BINARY)."""

    def __init__(self, name, kind="f", data=b"", mode=None, uid=0, gid=0, target=b"",
                 dev=(0, 0), pax=False, binary=False, mtime=START_TIME, size=None, raw=False):
        self.name, self.kind, self.data = b(name), kind, b(data)
        self.mode = mode if mode is not None else (0o700 if kind == "d" else 0o600)
        self.uid, self.gid, self.target, self.dev = uid, gid, b(target), dev
        self.pax, self.binary, self.mtime = pax, binary, mtime
        self.size = size  # header size when it must differ from len(data)
        self.raw = raw  # plain ustar, names as bytes in the header (as PostgreSQL writes)

    def tar(self):
        name = self.name + (b"/" if self.kind == "d" and not self.name.endswith(b"/") else b"")
        recs = {}
        if self.raw:
            pass
        elif self.pax or len(name) > 99 or any(c > 127 for c in name):
            recs[b"path"] = name
        if self.target and not self.raw and (self.pax or len(self.target) > 99 or
                                             any(c > 127 for c in self.target)):
            recs[b"linkpath"] = self.target
        if self.binary:
            recs = {b"hdrcharset": b"BINARY", **recs}
        size = self.size if self.size is not None else len(self.data)
        out = _pax(recs) if recs else b""
        out += _header(name[:99], TYPES[self.kind], size, self.mode, self.uid, self.gid, self.mtime,
                       self.target[:99], *self.dev)
        return out + _pad(self.data)


def tar(entries, end=True):
    out = b"".join(e.tar() for e in entries)
    return out + (b"\0" * 1024 if end else b"")


def zstd(data):
    return subprocess.run(["zstd", "-q", "-1", "-c"], input=data, capture_output=True,
                          check=True).stdout


# --- PostgreSQL's backup_manifest ------------------------------------------------------------
def pg_manifest(files, wal_ranges=((1, "0/2000028", "0/2000100"),), version=1, raw_files=None,
                raw_ranges=None):
    """files: [(path bytes, data bytes)] -> manifest bytes with a correct Manifest-Checksum.
    raw_files / raw_ranges: JSON text to use instead (for malformed entries)."""
    lines = [b'{ "PostgreSQL-Backup-Manifest-Version": %d,' % version]
    if version == 2:
        lines.append(b'"System-Identifier": 7712637408763162037,')
    lines.append(b'"Files": [')
    if raw_files is not None:
        lines.append(b(raw_files))
    else:
        recs = []
        for path, data in files:
            try:
                key = b'"Path": ' + json.dumps(path.decode("utf-8"), ensure_ascii=False).encode()
            except UnicodeDecodeError:
                key = b'"Encoded-Path": "' + path.hex().encode() + b'"'
            recs.append(b'{ %s, "Size": %d, "Last-Modified": "2026-11-27 00:15:00 GMT", '
                        b'"Checksum-Algorithm": "CRC32C", "Checksum": "%s" }'
                        % (key, len(data), crc32c_hex(data).encode()))
        lines.append(b",\n".join(recs))
    lines.append(b"],")
    lines.append(b'"WAL-Ranges": [')
    if raw_ranges is not None:
        lines.append(b(raw_ranges))
    else:
        lines.append(b",\n".join(b'{ "Timeline": %d, "Start-LSN": "%s", "End-LSN": "%s" }'
                                 % (t, b(s), b(e)) for t, s, e in wal_ranges))
    lines.append(b"],")
    body = b"\n".join(lines) + b"\n"
    return body + b'"Manifest-Checksum": "%s"}\n' % hashlib.sha256(body).hexdigest().encode()


def wal_name(tli, segno):
    per = 0x100000000 // WAL_SEG
    return "%08X%08X%08X" % (tli, segno // per, segno % per)


def pgdata_entries(uid=0, gid=0):
    """A minimal data directory as a server archive holds it, and the WAL that
    0/2000028-0/2000100 needs (segment 0x20 with 1 MiB segments)."""
    e = [Entry("PG_VERSION", data=b"17\n", uid=uid, gid=gid),
         Entry("backup_label", data=b"START WAL LOCATION: 0/2000028\n", uid=uid, gid=gid),
         Entry("global", "d", uid=uid, gid=gid),
         Entry("global/pg_control", data=b"\1" * 8192, uid=uid, gid=gid),
         Entry("pg_wal", "d", uid=uid, gid=gid),
         Entry("pg_wal/" + wal_name(1, 0x2000028 // WAL_SEG), data=b"\0" * WAL_SEG, uid=uid, gid=gid)]
    return e


def manifest_files(entries):
    """(path, data) of every regular, non-WAL file (what PostgreSQL lists), and of hard
    links with data (which libarchive reports as regular files)."""
    return [(e.name, e.data) for e in entries
            if (e.kind == "f" or (e.kind == "h" and e.data)) and not e.name.startswith(b"pg_wal/")]


def new_id(n=0):
    t = START_TIME + n * 86400
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + ".000Z-%08x" % (0x1a2b3c00 + n), t


def _meta(bid, t, kind, archive, members, archive_size, extra=None):
    m = {"format": "hive-migrate-backup/1", "id": bid, "kind": kind,
         "uuid": "%s-0000-4000-8000-000000000000" % bid[-8:], "label": "hive-migrate crafted",
         "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
         "end_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + 10)),
         "timeline": 1, "system_identifier": "7712637408763162037", "pg_version": 170002,
         "wal_segment_size": WAL_SEG, "manifest_checksums": "CRC32C", "compression": "zstd:1",
         "source": "crafted", "database_size": 1 << 20, "archive": archive,
         "members": members}
    if kind == "online":
        m.update(start_lsn="0/2000028", end_lsn="0/2000100")
    if archive_size is not None:
        m["archive_size"] = archive_size
    m.update(extra or {})
    return m


def _ustar_member(name, data):
    return _header(b(name), b"0", len(data), 0o600) + _pad(data)


def make_repo(path):
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def online_backup(repo, entries=None, manifest=None, n=0, base=None, extra_meta=None):
    """Write a consistent online backup into repo; returns its id. entries: the server
    archive's members (default pgdata_entries()); manifest: backup_manifest bytes (default:
    one listing every regular file of entries); base: base.tar.zst bytes to use as is."""
    entries = pgdata_entries() if entries is None else entries
    base = zstd(tar(entries, end=False)) if base is None else base
    manifest = pg_manifest(manifest_files(entries)) if manifest is None else manifest
    bid, t = new_id(n)
    members = [{"name": nm, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
               for nm, d in (("base.tar.zst", base), ("backup_manifest", manifest))]
    inner_meta = json.dumps(_meta(bid, t, "online", "backup.tar", members, None, extra_meta),
                            indent=2).encode()
    outer = (_ustar_member("base.tar.zst", base) + _ustar_member("backup_manifest", manifest) +
             _ustar_member("backup.json", inner_meta) + b"\0" * 1024)
    d = Path(repo) / bid
    d.mkdir(mode=0o700)
    (d / "backup.tar").write_bytes(outer)
    meta = _meta(bid, t, "online", "backup.tar", members, len(outer), extra_meta)
    (d / "backup.json").write_text(json.dumps(meta, indent=2))
    return bid


def offline_entry(path, kind, data=b"", mode=None, uid=0, gid=0, target=b"", mtime=START_TIME):
    """A manifest record + tar member of an offline archive; path relative ("." = top)."""
    path = b(path)
    mode = mode if mode is not None else (0o700 if kind == "d" else 0o600)
    name = b"data" if path == b"." else b"data/" + path
    tkind = {"file": "f", "dir": "d", "symlink": "l"}.get(kind, kind)
    ent = Entry(name, tkind, data=data, mode=mode, uid=uid, gid=gid, target=target, pax=True,
                binary=True, mtime=mtime)
    rec = {"type": kind if kind in ("file", "dir", "symlink") else "file",
           "size": len(b(data)) if kind == "file" else 0, "mode": mode, "uid": uid, "gid": gid,
           "mtime": mtime}
    try:
        rec["path"] = path.decode("utf-8")
    except UnicodeDecodeError:
        rec["path_hex"] = path.hex()
    if kind == "file":
        rec["sha256"] = hashlib.sha256(b(data)).hexdigest()
    if kind == "symlink":
        try:
            rec["target"] = b(target).decode("utf-8")
        except UnicodeDecodeError:
            rec["target_hex"] = b(target).hex()
    return ent, rec


def offline_archive(items, metadata=None, manifest_pad=0, manifest_override=None):
    """items: [(Entry, record)] -> data.tar.zst bytes with a consistent manifest."""
    meta = json.dumps(metadata or {"kind": "crafted"}).encode()
    man = {"format": "hive-migrate-archive/1", "metadata": json.loads(meta),
           "metadata_sha256": hashlib.sha256(meta).hexdigest(), "files": [r for _, r in items]}
    mtext = json.dumps(man, ensure_ascii=False).encode() if manifest_override is None else manifest_override
    mtext = mtext[:-1] + b" " * manifest_pad + mtext[-1:]
    ents = ([Entry("hive-migrate/metadata.json", data=meta)] + [e for e, _ in items] +
            [Entry("hive-migrate/manifest.json", data=mtext)])
    return zstd(tar(ents))


def offline_backup(repo, items, n=0, archive=None, **kw):
    """Write a consistent offline backup into repo; returns its id."""
    archive = offline_archive(items, **kw) if archive is None else archive
    bid, t = new_id(n)
    members = [{"name": "data.tar.zst", "size": len(archive),
                "sha256": hashlib.sha256(archive).hexdigest()}]
    d = Path(repo) / bid
    d.mkdir(mode=0o700)
    (d / "data.tar.zst").write_bytes(archive)
    meta = _meta(bid, t, "offline", "data.tar.zst", members, len(archive))
    meta["pg_version"] = 170000
    (d / "backup.json").write_text(json.dumps(meta, indent=2))
    return bid


def pgdata_items(uid=0, gid=0):
    """A small offline data directory: top, PG_VERSION, global/pg_control."""
    return [offline_entry(".", "dir", uid=uid, gid=gid),
            offline_entry("PG_VERSION", "file", b"17\n", uid=uid, gid=gid),
            offline_entry("global", "dir", uid=uid, gid=gid),
            offline_entry("global/pg_control", "file", b"\1" * 8192, uid=uid, gid=gid)]


def snapshot(root):
    """Everything under root (bytes paths): type, mode, owner, size, content digest,
    symlink target; for "nothing outside the target changed" assertions."""
    root = b(str(root))
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rec = (st.st_mode, st.st_uid, st.st_gid, st.st_size)
            if os.path.islink(p):
                rec += (os.readlink(p),)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    rec += (hashlib.sha256(f.read()).hexdigest(),)
            out[os.path.relpath(p, root)] = rec
    return out
