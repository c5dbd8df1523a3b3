"""End-to-end tests of `hive-migrate backup`, `backups ...` and `status` against the real unified
container (PostgreSQL 17 + pgvector + the API, localhost/hive-unified:17) started from
docker/templates/agent.yml, while the API writes. Containers are named hb-*, host ports 25886
(API) and 25532 (PostgreSQL), all data in tmp_path; everything is removed in teardown.
"""
import fcntl
import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, hm, run, wait_until
from unified_helpers import (IMAGE, build_image, compose, docker, healthy, http, make_data_dir,
                             pg_state, psql, rm_containers, wait_healthy)

NAME = "hb-agent-unified"
RESTORED = "hb-restored"
API_PORT, PG_PORT = 25886, 25532
DB_PASSWORD = "Hb-db-pw-3e1f"
BACKUP_PASSWORD = "Hb-backup-pw-7c9d"
TEMPLATE = ROOT / "docker" / "templates" / "agent.yml"
EXIT_LOCKED, EXIT_VERIFY_FAILED, EXIT_STALE, EXIT_INPUT = 33, 40, 42, 20
EXIT_DATABASE = 32


def backup_env(**extra):
    """Environment for hive-migrate: the backup password only through the environment."""
    return dict(os.environ, HIVE_BACKUP_PASSWORD=BACKUP_PASSWORD, HIVE_RESTORE_TEST_PREFIX="hb-", **extra)


def backup(repo, *extra, **kw):
    """hive-migrate backup against the test stack."""
    return hm("backup", "--repo", repo, "--host", "127.0.0.1", "--port", str(PG_PORT),
              "--user", "hive_backup", *extra, env=backup_env(), **kw)


def listing(repo):
    """backups list --json, parsed."""
    r = hm("backups", "list", "--repo", repo, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    """The unified agent container on a fresh data directory, seeded through the API and with
    some bulk data so that a backup takes a moment."""
    build_image()
    base = tmp_path_factory.mktemp("hb-stack")
    data = make_data_dir(base / "postgres-agent")
    env = {"HIVE_DATA_DIR": str(data), "HIVE_DB_PASSWORD": DB_PASSWORD,
           "HIVE_BACKUP_PASSWORD": BACKUP_PASSWORD, "HIVE_API_PORT": str(API_PORT),
           "HIVE_PG_PORT": str(PG_PORT), "HIVE_CONTAINER_NAME": NAME}
    rm_containers(NAME, RESTORED)
    compose(TEMPLATE, NAME, env, "up", "-d")
    try:
        wait_healthy(API_PORT, NAME, timeout=120)
        for i in range(20):
            status, body = http(API_PORT, "POST", "/api/v1/knowledge", {"content": f"seed {i}"})
            assert status == 200, body
        psql(NAME, "agent", "hive_agent",
             "CREATE TABLE public.filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 400000) g")
        yield {"env": env, "data": data, "pgdata": data / "pgdata", "base": base}
    finally:
        compose(TEMPLATE, NAME, env, "down", "-t", "30", check=False)
        rm_containers(NAME, RESTORED)


class Writer(threading.Thread):
    """Posts knowledge rows continuously; records (id, monotonic time the commit was seen)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.committed = []
        self.errors = 0
        self.lock = threading.Lock()

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                status, body = http(API_PORT, "POST", "/api/v1/knowledge",
                                    {"content": f"written during backup {i}", "name": f"w{i}"})
            except OSError:
                self.errors += 1
                continue
            if status == 200:
                with self.lock:
                    self.committed.append(body["id"])
            else:
                self.errors += 1

    def snapshot(self):
        with self.lock:
            return list(self.committed)


def start_restored(pgdata, name=RESTORED):
    """PostgreSQL of the unified image on a restored directory (own trust pg_hba on a unix
    socket, nothing published); returns when it accepts connections."""
    (pgdata / "hb_test_hba.conf").write_text("local all all trust\n")
    owner = pgdata.stat()
    os.chown(pgdata / "hb_test_hba.conf", owner.st_uid, owner.st_gid)
    rm_containers(name)
    docker("run", "-d", "--name", name, "--user", f"{owner.st_uid}:{owner.st_gid}",
           "--entrypoint", "/usr/lib/postgresql/17/bin/postgres",
           "-v", f"{pgdata}:/var/lib/postgresql/data/pgdata", IMAGE,
           "-D", "/var/lib/postgresql/data/pgdata", "-c", "listen_addresses=",
           "-c", "unix_socket_directories=/tmp",
           "-c", "hba_file=/var/lib/postgresql/data/pgdata/hb_test_hba.conf", check=True)

    def ready():
        r = docker("exec", name, "pg_isready", "-h", "/tmp")
        if r.returncode != 0:
            state = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", docker("logs", name).stderr[-2000:]
        return r.returncode == 0
    wait_until(ready, 120, interval=0.3, what="restored PostgreSQL accepting connections")


def rq(name, sql, db="hive_agent", user="agent"):
    """Query the restored cluster over its socket (trust)."""
    r = docker("exec", name, "psql", "-X", "-qAt", "-h", "/tmp", "-U", user, "-d", db,
               "-v", "ON_ERROR_STOP=1", "-c", sql)
    assert r.returncode == 0, f"{sql}: {r.stderr}"
    return r.stdout.strip()


def tree(root):
    """{relative path: (type, mode, size, sha256 or link target)} of a directory tree."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), 0, "")
            else:
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_size,
                            hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def test_backup_while_api_writes_then_restore_is_consistent(stack, tmp_path):
    """Online backup while the API writes: restored into a new directory, the cluster starts in
    a container of the unified image, recovers to a consistent state and holds every row
    committed before the backup began."""
    repo = tmp_path / "repo"
    writer = Writer()
    writer.start()
    wait_until(lambda: len(writer.snapshot()) >= 20, 30, what="the writer committing rows")
    before = writer.snapshot()
    t0 = time.monotonic()
    r = backup(repo)
    took = time.monotonic() - t0
    during = len(writer.snapshot()) - len(before)
    writer.stop.set()
    writer.join(10)
    assert r.returncode == 0, r.stderr
    assert during > 0, "the API wrote nothing while the backup ran"
    items = listing(repo)
    assert len(items) == 1
    item = items[0]
    assert item["kind"] == "online" and item["size"] > 0 and item["verified"] is None
    assert item["pg_version"] // 10000 == 17
    # repository 0700, archive and metadata 0600, no password anywhere in the metadata
    bdir = repo / item["id"]
    assert stat.S_IMODE(repo.stat().st_mode) == 0o700
    assert stat.S_IMODE(bdir.stat().st_mode) == 0o700
    for f in ("backup.tar", "backup.json"):
        assert stat.S_IMODE((bdir / f).stat().st_mode) == 0o600
    assert BACKUP_PASSWORD not in (bdir / "backup.json").read_text()
    assert BACKUP_PASSWORD not in r.stdout + r.stderr
    # the outer archive is a plain tar whose members are the server's archives + manifest
    names = run(["tar", "-tf", bdir / "backup.tar"], check=True).stdout.split()
    assert names == ["base.tar.zst", "backup_manifest", "backup.json"], names

    v = hm("backups", "verify", item["id"], "--repo", repo)
    assert v.returncode == 0, v.stderr
    assert listing(repo)[0]["verified"] is True

    target = tmp_path / "restored"
    rr = hm("backups", "restore", item["id"], "--repo", repo, "--to", target)
    assert rr.returncode == 0, rr.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert target.stat().st_uid == stack["pgdata"].stat().st_uid
    assert (target / "backup_label").exists() and (target / "backup_manifest").exists()
    try:
        start_restored(target)
        assert rq(RESTORED, "SELECT pg_is_in_recovery()") == "f"
        ids = set(rq(RESTORED, "SELECT id FROM agno.knowledge_base").split())
        missing = [i for i in before if str(i) not in ids]
        assert not missing, f"{len(missing)} rows committed before the backup are missing: {missing[:5]}"
        assert rq(RESTORED, "SELECT count(*) FROM public.filler") == "400000"
        # the HNSW index answers a pgvector search on the restored data
        hits = rq(RESTORED, "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM "
                            "agno.knowledge_base ORDER BY embedding <=> (SELECT embedding FROM "
                            "agno.knowledge_base LIMIT 1) LIMIT 5) s")
        assert hits == "5"
        # structural check of the btree indexes (amcheck ships with PostgreSQL)
        su = rq(RESTORED, "SELECT rolname FROM pg_roles WHERE oid = 10")
        rq(RESTORED, "CREATE EXTENSION IF NOT EXISTS amcheck; SELECT bt_index_check(c.oid) FROM pg_index i "
                     "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                     "WHERE a.amname = 'btree' AND c.relnamespace = 'agno'::regnamespace", user=su)
        docker("stop", "-t", "30", RESTORED, check=True)
        assert pg_state(target) == "shut down"
    finally:
        rm_containers(RESTORED)
    print(f"backup took {took:.1f} s; {during} rows written during it")


def test_overlapping_run_exits_locked_at_once(stack, tmp_path):
    """A run while another holds REPO/.lock exits at once with HM_EXIT_LOCKED, leaving nothing."""
    repo = tmp_path / "repo"
    repo.mkdir(mode=0o700)
    with open(repo / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        t0 = time.monotonic()
        r = backup(repo, "--quiet")
        assert time.monotonic() - t0 < 5
        assert r.returncode == EXIT_LOCKED, r.stderr
        assert "lock" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        v = hm("backups", "prune", "--repo", repo, "--keep-last", "1")
        assert v.returncode == EXIT_LOCKED
    assert listing(repo) == []
    r = backup(repo, "--quiet")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr


def test_server_side_failure_names_the_servers_cause(stack, tmp_path):
    """A file the server cannot read fails BASE_BACKUP mid-stream: the one error line carries
    the server's own message (the file and "Permission denied"), nothing is listed."""
    repo = tmp_path / "repo"
    bad = stack["pgdata"] / "hm-unreadable"
    bad.write_bytes(b"x" * 100)
    os.chown(bad, 0, 0)
    os.chmod(bad, 0o600)
    try:
        r = backup(repo, "--quiet")
    finally:
        bad.unlink()
    assert r.returncode == EXIT_DATABASE, r.stderr
    first = r.stderr.strip().splitlines()[0]
    assert "hm-unreadable" in first and "Permission denied" in first, r.stderr
    assert not repo.exists() or listing(repo) == []


def test_kill_9_mid_backup_leaves_usable_repository(stack, tmp_path):
    """A run killed (SIGKILL) mid-stream: its partial never shows in list or status, and the
    next run cleans it up and succeeds."""
    repo = tmp_path / "repo"
    ok = backup(repo, "--quiet")
    assert ok.returncode == 0, ok.stderr
    r = hm("backup", "--repo", repo, "--host", "127.0.0.1", "--port", str(PG_PORT), "--user", "hive_backup",
           env=backup_env(HIVE_BACKUP_FAULT="mid-stream"))
    assert r.returncode == -9, (r.returncode, r.stderr)
    partials = list((repo / ".tmp").iterdir())
    assert partials, "the killed run left no partial to clean up (was it killed mid-stream?)"
    assert len(listing(repo)) == 1
    assert hm("status", "--repo", repo).returncode == 0
    r = backup(repo, "--quiet")
    assert r.returncode == 0, r.stderr
    assert list((repo / ".tmp").iterdir()) == []
    items = listing(repo)
    assert len(items) == 2
    v = hm("backups", "verify", "--all", "--repo", repo, "--quiet")
    assert v.returncode == 0, v.stderr


def flip_bit_in_member(archive, member, where=0.5):
    """Flip one bit in the middle of a member of an uncompressed tar; returns the offset."""
    import tarfile
    with tarfile.open(archive) as t:
        info = t.getmember(member)
    off = info.offset_data + int(info.size * where)
    with open(archive, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x04]))
    return off


def test_flipped_bit_fails_verify_naming_the_file(stack, tmp_path):
    """One flipped bit in the server's archive: verify exits 40 naming it, records the failure,
    and status no longer counts that backup as valid."""
    repo = tmp_path / "repo"
    assert backup(repo, "--quiet").returncode == 0
    item = listing(repo)[0]
    flip_bit_in_member(repo / item["id"] / "backup.tar", "base.tar.zst")
    v = hm("backups", "verify", item["id"], "--repo", repo)
    assert v.returncode == EXIT_VERIFY_FAILED, v.stderr
    assert "base.tar.zst" in v.stderr and "mismatch" in v.stderr
    after = listing(repo)[0]
    assert after["verified"] is False and "base.tar.zst" in after["verify_error"]
    s = hm("status", "--repo", repo, "--json")
    assert s.returncode == EXIT_STALE and json.loads(s.stdout)["newest"] is None
    # a flip in the manifest is caught by Manifest-Checksum / the member digest
    assert backup(repo, "--quiet").returncode == 0
    second = listing(repo)[-1]
    flip_bit_in_member(repo / second["id"] / "backup.tar", "backup_manifest", 0.3)
    v = hm("backups", "verify", second["id"], "--repo", repo)
    assert v.returncode == EXIT_VERIFY_FAILED
    assert "backup_manifest" in v.stderr
    # --all reports both and fails
    v = hm("backups", "verify", "--all", "--repo", repo)
    assert v.returncode == EXIT_VERIFY_FAILED
    assert item["id"] in v.stderr and second["id"] in v.stderr


def test_truncated_archive_is_refused(stack, tmp_path):
    """A truncated archive fails verify and restore refuses it, leaving no target behind."""
    repo = tmp_path / "repo"
    assert backup(repo, "--quiet").returncode == 0
    item = listing(repo)[0]
    archive = repo / item["id"] / "backup.tar"
    os.truncate(archive, archive.stat().st_size // 2)
    v = hm("backups", "verify", item["id"], "--repo", repo)
    assert v.returncode == EXIT_VERIFY_FAILED
    assert "truncated" in v.stderr
    target = tmp_path / "restored"
    r = hm("backups", "restore", item["id"], "--repo", repo, "--to", target)
    assert r.returncode == EXIT_VERIFY_FAILED, r.stderr
    assert not target.exists()
    assert not list(tmp_path.glob("restored.restoring-*"))


def test_restore_refuses_non_empty_target_and_replace_keeps_previous(stack, tmp_path):
    """restore never writes into a non-empty directory; --replace moves it aside first."""
    repo = tmp_path / "repo"
    assert backup(repo, "--quiet").returncode == 0
    target = tmp_path / "pgdata"
    target.mkdir()
    (target / "keep-me").write_text("old")
    r = hm("backups", "restore", "latest", "--repo", repo, "--to", target)
    assert r.returncode == EXIT_INPUT and "not empty" in r.stderr
    assert (target / "keep-me").read_text() == "old"
    r = hm("backups", "restore", "latest", "--repo", repo, "--to", target, "--replace")
    assert r.returncode == 0, r.stderr
    aside = list(tmp_path.glob("pgdata.before-restore-*"))
    assert len(aside) == 1 and (aside[0] / "keep-me").read_text() == "old"
    assert (target / "PG_VERSION").read_text().strip() == "17"


def test_verify_restore_test_starts_a_throwaway_cluster(stack, tmp_path):
    """verify --restore-test: a container of the unified image on a restored copy answers row
    counts and a pgvector search, and is removed afterwards."""
    repo = tmp_path / "repo"
    assert backup(repo, "--quiet").returncode == 0
    r = hm("backups", "verify", "latest", "--repo", repo, "--restore-test", "--image", IMAGE,
           env=backup_env())
    assert r.returncode == 0, r.stderr
    assert "knowledge rows" in r.stdout and "vector search 5 hits" in r.stdout, r.stdout
    names = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if n.startswith("hb-restoretest-")]
    assert list((repo / ".tmp").iterdir()) == []


def test_status_prune_and_usage(stack, tmp_path):
    """status: stale on an empty repository, ok after a backup; prune keeps the newest;
    bad options are usage errors."""
    repo = tmp_path / "repo"
    repo.mkdir(mode=0o700)
    s = hm("status", "--repo", repo)
    assert s.returncode == EXIT_STALE
    for _ in range(3):
        assert backup(repo, "--quiet").returncode == 0
    s = hm("status", "--repo", repo, "--max-age", "26h", "--json")
    assert s.returncode == 0, s.stderr
    st = json.loads(s.stdout)
    assert st["stale"] is False and st["newest"]["id"] == listing(repo)[-1]["id"]
    d = hm("backups", "prune", "--repo", repo, "--keep-last", "1", "--dry-run", "--json")
    assert d.returncode == 0 and len(listing(repo)) == 3
    plan = json.loads(d.stdout)
    assert [p["keep"] for p in plan] == [False, False, True]
    p = hm("backups", "prune", "--repo", repo, "--keep-last", "1")
    assert p.returncode == 0
    assert [i["id"] for i in listing(repo)] == [plan[-1]["id"]]
    assert hm("backups", "prune", "--repo", repo).returncode == 2
    assert hm("backup", "--bogus").returncode == 2
    assert hm("backup", "--help").returncode == 0
    assert hm("backups", "show", "nope", "--repo", repo).returncode == 41


def test_fast_zstd_level_reaches_the_server_and_verifies(stack, tmp_path):
    """--zstd-level -1 (one of zstd's fast levels) goes to the server as level=-1: the backup
    verifies, records zstd:-1, and its archive of the same database is larger than level 1's.
    Bad levels are refused with exit 2 before anything is created."""
    import tarfile
    sizes = {}
    for level in ("1", "-1"):
        repo = tmp_path / f"repo{level}"
        r = backup(repo, "--quiet", "--zstd-level", level)
        assert r.returncode == 0, r.stderr
        item = listing(repo)[0]
        v = hm("backups", "verify", item["id"], "--repo", repo)
        assert v.returncode == 0, v.stderr
        meta = json.loads((repo / item["id"] / "backup.json").read_text())
        assert meta["compression"] == f"zstd:{level}"
        with tarfile.open(repo / item["id"] / "backup.tar") as t:
            sizes[level] = t.getmember("base.tar.zst").size
    # the filler's md5 text compresses less at a fast level (about 10% larger here)
    assert sizes["-1"] > sizes["1"] * 1.02, sizes
    for bad in ("0", "23", "-131073", "5x", ""):
        repo = tmp_path / "bad"
        r = backup(repo, "--zstd-level", bad)
        assert r.returncode == 2, (bad, r.stderr)
        assert "--zstd-level" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not repo.exists()


def test_offline_backup_verify_restore_identical(stack, tmp_path):
    """The stack stopped cleanly: an offline backup of its data directory verifies and restores
    to an identical tree (paths, modes, sizes, contents). Runs last: it stops the stack."""
    compose(TEMPLATE, NAME, stack["env"], "stop", "-t", "30")
    pgdata = stack["pgdata"]
    wait_until(lambda: pg_state(pgdata) == "shut down", 60, what="clean shutdown")
    repo = tmp_path / "repo"
    r = hm("backup", "--offline", "--data-dir", pgdata, "--repo", repo, "--quiet")
    assert r.returncode == 0, r.stderr
    item = listing(repo)[0]
    assert item["kind"] == "offline"
    v = hm("backups", "verify", item["id"], "--repo", repo)
    assert v.returncode == 0, v.stderr
    target = tmp_path / "restored"
    r = hm("backups", "restore", item["id"], "--repo", repo, "--to", target)
    assert r.returncode == 0, r.stderr
    assert tree(target) == tree(pgdata)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    # an online-looking cluster (postmaster.pid present) is refused
    (tmp_path / "fake").mkdir()
    r = hm("backup", "--offline", "--data-dir", tmp_path / "fake", "--repo", repo)
    assert r.returncode != 0 and len(listing(repo)) == 1
