"""Any file name (issue #9, part 4): names are bytes. A data directory holding UTF-8 names
(café.txt, an emoji), names that are not UTF-8 at all, long paths and symlinks to such
names round-trips byte for byte through the offline backup (common/archive_dir, as the `up`
snapshot uses it), verify and restore, through an online archive as the server streams it
(ustar names as raw bytes, pax names in UTF-8 or marked BINARY), and through a real `up` +
`rollback --backup`, whatever the locale: cron runs with LANG=C.

Containers (the up/rollback test only) are named hh-*, host ports 27886 (API) and 27532."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import hostile_repo as h
from conftest import ROOT
from test_hostile import HM

LANGS = ["C", "C.UTF-8"]
LONG = b"d" * 200
NAMES = [b"caf\xc3\xa9.txt",                # UTF-8
         "\U0001F41D bee.txt".encode(),     # an emoji (4-byte UTF-8) and a space
         b"bad\xff\xfe.bin",                # not UTF-8 at all
         b"latin1-caf\xe9",                 # ISO-8859-1, as an old host might have written
         b"tab\tnew\nline",                 # control characters
         b"x" * 255]                        # the longest name a file system allows


def env_for(lang):
    return dict(os.environ, LANG=lang, LC_ALL=lang)


def hm(*args, lang="C", timeout=120):
    return subprocess.run([HM, *map(str, args)], capture_output=True, timeout=timeout,
                          env=env_for(lang))


def tree(root):
    """Every entry under root by bytes path: type, mode, owner, size, mtime, and content
    digest or symlink target."""
    root = os.fsencode(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rec = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                   st.st_size, int(st.st_mtime))
            if stat.S_ISLNK(st.st_mode):
                rec += (os.readlink(p),)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec += (hashlib.sha256(f.read()).hexdigest(),)
            out[os.path.relpath(p, root)] = rec
    return out


def add_names(d, names=NAMES):
    """The awkward names, as files, a directory, a long path and symlinks, under d."""
    d = os.fsencode(d)
    for i, n in enumerate(names):
        with open(os.path.join(d, n), "wb") as f:
            f.write(b"content %d of " % i + n + b"\n")
    sub = os.path.join(d, "répertoire-\U0001F41D".encode())
    os.mkdir(sub)
    with open(os.path.join(sub, b"inner\xff"), "wb") as f:
        f.write(b"inner\n")
    deep = os.path.join(d, LONG, LONG, LONG, LONG, LONG)  # a relative path over 1000 bytes
    os.makedirs(deep)
    with open(os.path.join(deep, NAMES[0]), "wb") as f:
        f.write(b"deep\n")
    os.symlink(NAMES[0], os.path.join(d, b"link-to-caf\xc3\xa9"))
    os.symlink(NAMES[2], os.path.join(d, b"link-to-bad"))
    os.symlink(b"/nonexistent/\xff\xfe/caf\xc3\xa9", os.path.join(d, b"dangling-\xff"))
    return set(names) | {os.path.basename(sub), LONG, b"link-to-caf\xc3\xa9", b"link-to-bad",
                         b"dangling-\xff"}


def pgdata(path):
    """A stopped cluster as far as `backup --offline` looks (PG_VERSION, pg_control saying
    shut down, from fixtures/pgdata/pg17) plus the awkward names."""
    path.mkdir()
    (path / "global").mkdir()
    shutil.copy(ROOT / "fixtures" / "pgdata" / "pg17" / "PG_VERSION", path)
    shutil.copy(ROOT / "fixtures" / "pgdata" / "pg17" / "global" / "pg_control", path / "global")
    add_names(path)
    return path


@pytest.mark.parametrize("lang", LANGS)
def test_offline_backup_verify_restore_keeps_names(tmp_path, lang):
    src = pgdata(tmp_path / "pgdata")
    repo = tmp_path / "repo"
    r = hm("backup", "--offline", "--data-dir", src, "--repo", repo, "--json", lang=lang)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    bid = json.loads(r.stdout)["id"]
    for other in LANGS:  # taken under one locale, checked and restored under any
        v = hm("backups", "verify", bid, "--repo", repo, lang=other)
        assert v.returncode == 0, v.stderr.decode(errors="replace")
        dst = tmp_path / ("restored-" + other)
        r = hm("backups", "restore", bid, "--repo", repo, "--to", dst, lang=other)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        got, want = tree(dst), tree(src)
        assert got == want, sorted(set(got) ^ set(want))[:5]
    # the archive's manifest stays valid JSON: names that are not UTF-8 are hex-encoded
    out = subprocess.run(["tar", "--zstd", "-xOf", repo / bid / "data.tar.zst",
                          "hive-migrate/manifest.json"], capture_output=True, check=True).stdout
    man = json.loads(out.decode("utf-8"))
    assert {"path_hex": b"bad\xff\xfe.bin".hex()}.items() <= next(
        f for f in man["files"] if f.get("path_hex") == b"bad\xff\xfe.bin".hex()).items()
    assert any(f.get("path") == "café.txt" for f in man["files"])


@pytest.mark.parametrize("lang", LANGS)
def test_online_archive_names_round_trip(tmp_path, lang):
    """The server writes plain ustar (names as raw bytes, under 100 bytes); other writers
    use pax, in UTF-8 or marked BINARY: every form restores to the same bytes."""
    repo = h.make_repo(tmp_path / "repo")
    ents = h.pgdata_entries()
    ents += [h.Entry(b"raw-" + NAMES[0], data=b"1", raw=True),
             h.Entry(b"raw-" + NAMES[2], data=b"2", raw=True),
             h.Entry(b"raw-dir-\xff", "d", raw=True),
             h.Entry(b"raw-dir-\xff/in-caf\xc3\xa9", data=b"3", raw=True),
             h.Entry(b"raw-link", "l", target=NAMES[2], raw=True),
             h.Entry(b"pax-utf8-" + NAMES[1], data=b"4", pax=True),
             h.Entry(b"pax-binary-" + NAMES[3], data=b"5", pax=True, binary=True),
             h.Entry(b"pax-long-" + LONG + b"-" + NAMES[0], data=b"6"),
             h.Entry(b"pax-link", "l", target=b"\xff" + LONG, binary=True)]
    bid = h.online_backup(repo, ents)
    v = hm("backups", "verify", bid, "--repo", repo, lang=lang)
    assert v.returncode == 0, v.stderr.decode(errors="replace")
    dst = tmp_path / "restored"
    r = hm("backups", "restore", bid, "--repo", repo, "--to", dst, lang=lang)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    got = tree(dst)
    for e in ents:
        assert e.name in got, (e.name, sorted(got)[:20])
        if e.kind == "f":
            assert got[e.name][-1] == hashlib.sha256(e.data).hexdigest()
        if e.kind == "l":
            assert got[e.name][-1] == e.target


# --- a real up + rollback with such names in PGDATA ------------------------------------------
PREFIX = "hh-"
API_PORT, PG_PORT = 27886, 27532
UNIFIED = "hh-hive-agent-unified"


def docker(*args):
    return subprocess.run(["docker", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def names_stack(engine, tmp_path):
    from migrate_helpers import ensure_unified_image
    from splitstack import SplitStack, ensure_images
    ensure_images(pg=(17,))
    ensure_unified_image()
    s = SplitStack(tmp_path / "hh-names", profile="agent", name_prefix=PREFIX,
                   ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    docker("rm", "-f", UNIFIED)
    s.create()
    s.up()
    s.fill("1MB", seed=3)
    yield s
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)
    s.down()


def test_up_and_rollback_keep_names(names_stack):
    s = names_stack
    # PostgreSQL ignores files it does not know in PGDATA. (Not a newline: up's ownership
    # record, migrate/ownership.c, is line based and refuses such a name before changing
    # anything.)
    top = add_names(s.data_dir(), [n for n in NAMES if b"\n" not in n])
    # owned as the split image's entrypoint would leave them (it chowns PGDATA to 999 on start)
    subprocess.run(["chown", "-hR", "999:999", s.data_dir()], check=True)
    names = {k: v for k, v in tree(s.data_dir()).items() if k.split(b"/")[0] in top}
    assert len(names) > len(top)
    fp = s.fingerprint()
    common = ["--stack", s.path, "--profile", "agent", "--yes", "--json", "--health-timeout", "90"]
    r = hm("up", *common, "--container-name", UNIFIED, "--templates", ROOT / "docker" / "templates",
           lang="C", timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    backup_id = json.loads(r.stdout)["profiles"][0]["backup_id"]
    after_up = tree(s.data_dir())
    for k, v in names.items():  # the same bytes, now owned by the unified container's uid
        assert k in after_up and after_up[k][4:] == v[4:], k
    r = hm("rollback", *common, "--backup", backup_id, lang="C", timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    back = tree(s.data_dir())
    for k, v in names.items():  # restored from the snapshot: byte for byte, owners too
        assert back.get(k) == v, (k, back.get(k), v)
    assert s.fingerprint() == fp
    for d in s.mount_dir().parent.glob("postgres-agent.displaced-*"):
        subprocess.run(["rm", "-rf", d], check=True)
