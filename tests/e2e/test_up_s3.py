"""hive-migrate up --archive-dir s3://BUCKET/PREFIX against the test bed's real radosgw
(tests/objstore/ceph-setup.sh), a real split stack and the real unified container: the
snapshot is an offline backup of the repository format (listed, verified and restored by
`backups ... --repo s3://`), verified from the object store before anything changes, and
every path that restores it (the automatic rollback, rollback --to-snapshot, the resume of a
killed up) reads it back from there. Preflight refuses an unusable object store before the
split stack is stopped. Names "hy-", host ports 35871 (API) / 35571 (PostgreSQL)."""
import hashlib
import json
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from conftest import HM, run, wait_until
from migrate_helpers import TEMPLATES, docker, ensure_unified_image
from s3_helpers import TOOL, Tool, clean_env, ensure_objstore
from splitstack import SplitStack, ensure_images

PREFIX = "hy-"
API_PORT = 35871
PG_PORT = 35571
UNIFIED = "hy-hive-agent-unified"
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 35
EXIT_PREFLIGHT = 37
EXIT_STORAGE = 25
EXIT_NOT_FOUND = 41


def remove_unified():
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


def container_state(name):
    r = docker("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else None


class Bed:
    """The stack, the bucket and how hive-migrate reaches them (credentials file, empty HOME,
    no AWS_* variables, a private TMPDIR: the stage of downloads)."""

    def __init__(self, stack, store, bucket, tool, tmp):
        self.s, self.store, self.bucket, self.tool = stack, store, bucket, tool
        self.repo = f"s3://{bucket}/snaps"
        self.home = tmp / "home"
        self.stage = tmp / "stage"
        self.home.mkdir(exist_ok=True)
        self.stage.mkdir(exist_ok=True)

    def env(self, **extra):
        env = dict(clean_env(self.home), TMPDIR=str(self.stage), **extra)
        for k in ("HIVE_MIGRATE_FAULT", "HIVE_MIGRATE_FAIL"):
            env.pop(k, None)
        env.update(extra)
        return env

    def s3opts(self, creds=None, endpoint=None):
        return ["--s3-endpoint", endpoint or self.store.endpoint,
                "--s3-credentials-file", creds or self.store.credentials, "--s3-lock-ttl", "10"]

    def checked(self, r):
        assert self.store.secret_key not in r.stdout + r.stderr, "the secret key was printed"
        return r

    def up(self, *extra, repo=None, creds=None, endpoint=None, env=None, timeout=600):
        argv = [HM, "up", "--stack", self.s.path, "--profile", "agent", "--yes", "--json",
                "--container-name", UNIFIED, "--templates", TEMPLATES, "--health-timeout", "60",
                "--archive-dir", repo or self.repo, *self.s3opts(creds, endpoint), *extra]
        return self.checked(run(argv, env=env or self.env(), timeout=timeout))

    def rollback(self, *extra, timeout=600):
        argv = [HM, "rollback", "--stack", self.s.path, "--profile", "agent", "--yes", "--json",
                "--health-timeout", "60", *self.s3opts(), *extra]
        return self.checked(run(argv, env=self.env(), timeout=timeout))

    def backups(self, *args, timeout=600):
        return self.checked(run([HM, "backups", *args, "--repo", self.repo, *self.s3opts()],
                                env=self.env(), timeout=timeout))

    def journal(self):
        p = self.s.path / ".hive-migrate" / "journal-agent.json"
        return json.loads(p.read_text()) if p.exists() else None

    def local_archives(self):
        d = self.s.path / ".hive-migrate" / "archives"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []


def after_lease(call):
    """call() again while the lease of a killed run (--s3-lock-ttl 10) blocks it; its last result."""
    last = []

    def done():
        last[:] = [call()]
        return last[0].returncode != 33
    wait_until(done, 40, interval=1, what="the killed run's lease to expire")
    return last[0]


def describe(r):
    return f"rc={r.returncode}\nstdout={r.stdout[-3000:]}\nstderr={r.stderr[-5000:]}"


def one_error_line(r):
    lines = [x for x in r.stderr.splitlines() if x.startswith("hive-migrate: error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def tree(root):
    """Every entry below root (root included) with type, mode, owner, mtime, and the size and
    SHA-256 of regular files or the target of symlinks: equal trees are equal byte for byte."""
    out = {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None, *dirnames, *filenames]:
            if name is None and dirpath != root:
                continue
            p = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(p)
            key = os.path.relpath(p, root)
            common = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("l", os.readlink(p), st.st_uid, st.st_gid)
            elif stat.S_ISDIR(st.st_mode):
                out[key] = ("d", *common)
            else:
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[key] = ("f", *common, st.st_size, int(st.st_mtime), digest)
    return out


@pytest.fixture(scope="module")
def bed(engine, tmp_path_factory):
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is missing: run `make tools` (make e2e does)")
    store = ensure_objstore()
    ensure_unified_image()
    ensure_images(pg=(17,))
    tmp = tmp_path_factory.mktemp("hy-up-s3")
    s = SplitStack(tmp / "hy-stack", profile="agent", name_prefix=PREFIX,
                   ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    remove_unified()
    s.create()
    s.up()
    s.fill("12MB", seed=12)
    s.before = s.fingerprint()
    name = f"hy-{uuid.uuid4().hex[:10]}"
    home = tmp / "toolhome"
    home.mkdir()
    tool = Tool(store, f"s3://{name}", home)
    tool.ok("mb")
    b = Bed(s, store, name, tool, tmp)
    yield b
    remove_unified()
    s.down()
    tool("sweep")
    tool("rmdir", "")
    tool("rb")


def split_back(b):
    """The split stack runs, healthy, with exactly its data, and no unified container is left."""
    s = b.s
    assert s.state(role="postgres") == "running"
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert s.fingerprint() == s.before
    assert container_state(UNIFIED) is None


def test_preflight_refuses_an_unusable_object_store(bed, tmp_path):
    """Wrong secret, unknown bucket, no server: one line, exit 37, before the split stack is
    touched; a bad --s3-part-size is a usage error; --dry-run names where the snapshot goes."""
    b = bed
    bad = tmp_path / "bad-credentials"
    bad.write_text(f"[default]\naws_access_key_id = {b.store.access_key}\n"
                   "aws_secret_access_key = not-the-secret-hy\n")
    os.chmod(bad, 0o600)
    cases = [
        (dict(creds=bad), "SignatureDoesNotMatch"),
        (dict(repo=f"s3://hy-missing-{uuid.uuid4().hex[:8]}/x"), "NoSuchBucket"),
        (dict(endpoint="http://127.0.0.1:35999"), "127.0.0.1:35999"),
    ]
    for kw, what in cases:
        r = b.up(**kw)
        assert r.returncode == EXIT_PREFLIGHT, describe(r)
        line = one_error_line(r)
        assert "refused by preflight" in line and what in line, line
        assert b.s.state(role="postgres") == "running"
        assert b.s.state(role="api") == "running"
        assert b.journal() is None
        assert container_state(UNIFIED) is None
    for size in ("1MiB", "lots", "1GiB"):
        r = b.up("--s3-part-size", size)
        assert r.returncode == EXIT_USAGE, describe(r)
        assert "--s3-part-size must be 5MiB..512MiB" in one_error_line(r)
    r = b.up("--dry-run")
    assert r.returncode == 0, describe(r)
    assert f"into {b.repo}/<id>/data.tar.zst" in r.stdout
    assert "verify it in full as read back from the object store" in r.stdout
    assert b.journal() is None
    assert b.s.state(role="postgres") == "running"
    assert b.tool.ok("ls", "snaps", opts=["--recursive"]).stdout.strip() == ""


def test_failure_in_step_7_rolls_back_from_the_object_store(bed):
    """The unified container started (the data directory may be written): the automatic
    rollback downloads the snapshot, verifies and extracts it, and the split stack is back
    with its rows."""
    b = bed
    r = b.up(env=b.env(HIVE_MIGRATE_FAIL="before:start-snapshot"))
    assert r.returncode == EXIT_ROLLED_BACK, describe(r)
    assert "downloading, verifying and extracting s3://" in r.stderr
    split_back(b)
    j = b.journal()
    assert j["status"] == "rolled-back" and j["snapshot_repo"] == b.repo
    assert j["archive"] == f"{b.repo}/{j['backup_id']}/data.tar.zst"
    assert b.local_archives() == []
    # the snapshot stays listed, verified
    listing = json.loads(b.backups("list", "--json").stdout)
    assert [x["id"] for x in listing] == [j["backup_id"]]
    assert listing[0]["verified"] is True


def test_snapshot_is_a_backup_restorable_byte_for_byte_and_up_resumes(bed, tmp_path):
    """kill -9 once the snapshot is stored, before it is verified: the data directory is as
    snapshotted. `backups
    restore` of the snapshot gives the same tree byte for byte; parts have the size asked
    for; the rerun verifies the snapshot from the store again and migrates; nothing is
    written into the local archive directory and no secret lands in the journal."""
    b = bed
    r = b.up("--s3-part-size", "6MiB", env=b.env(HIVE_MIGRATE_FAULT="during:snapshot-verify"))
    assert r.returncode == -9, describe(r)
    j = b.journal()
    assert j["step"] == "stopped" and j["snapshot_repo"] == b.repo
    assert j["snapshot_s3_endpoint"] == b.store.endpoint
    text = (b.s.path / ".hive-migrate" / "journal-agent.json").read_text()
    assert b.store.secret_key not in text and b.store.access_key not in text
    assert "credentials" not in text
    sid = j["backup_id"]
    data_dir = b.s.mount_dir()
    before = tree(data_dir)
    listing = {x["id"]: x for x in json.loads(b.backups("list", "--json").stdout)}
    assert listing[sid]["kind"] == "offline" and listing[sid]["verified"] is None
    v = after_lease(lambda: b.backups("verify", sid))   # the killed run's lock first
    assert v.returncode == 0, describe(v)
    out = tmp_path / "restored"
    rr = b.backups("restore", sid, "--to", out)
    assert rr.returncode == 0, describe(rr)
    got = tree(out)
    # backups restore makes the top directory 0700 (docs/backup.md), the rest as archived
    assert got.pop(".") == ("d", 0o700, *before.pop(".")[2:])
    assert got == before
    # the part size: ceil(size / 6 MiB) parts (the multipart ETag says how many)
    size, etag = b.tool.ok("stat", f"snaps/{sid}/data.tar.zst").stdout.strip().split("\t")[1:3]
    assert int(size) > 6 << 20, "the fill should make an archive of several parts"
    assert etag.endswith(f"-{-(-int(size) // (6 << 20))}"), (size, etag)
    # the rerun resumes: the snapshot is verified again from the store, then the migration
    r = b.up()
    assert r.returncode == 0, describe(r)
    assert "verifying the snapshot left by the interrupted run: s3://" in r.stderr
    out = json.loads(r.stdout)["profiles"][0]
    assert out["result"] == "migrated" and out["archive"] == j["archive"]
    assert out["snapshot_repo"] == b.repo and out["backup_id"] == sid
    assert container_state(UNIFIED) == "running"
    assert b.s.fingerprint() == b.s.before
    assert b.local_archives() == []
    assert b.journal()["backup_id"] == sid
    assert {x["id"]: x["verified"] for x in json.loads(b.backups("list", "--json").stdout)}[sid] is True


def test_rollback_to_snapshot_reads_it_from_the_object_store(bed):
    """After a completed migration with the snapshot in S3, a write on the unified container,
    then rollback --to-snapshot: the snapshot comes from the store and the split stack is back
    with the data as before the migration; the safety snapshot stays local."""
    b = bed
    if (b.journal() or {}).get("status") != "done":
        r = b.up()
        assert r.returncode == 0, describe(r)
    with b.s.connect() as c:
        c.execute("CREATE TABLE public.hy_after (n int)")
        c.execute("INSERT INTO public.hy_after SELECT generate_series(1, 10)")
    # the object store down at rollback time: one line, its exit code, nothing changed
    r = b.rollback("--to-snapshot", "--s3-endpoint", "http://127.0.0.1:35999")
    assert r.returncode == EXIT_STORAGE, describe(r)
    line = one_error_line(r)
    assert "nothing was changed" in line and "127.0.0.1:35999" in line, line
    assert container_state(UNIFIED) == "running" and b.journal()["status"] == "done"
    r = b.rollback("--to-snapshot")
    assert r.returncode == 0, describe(r)
    assert "verifying the snapshot s3://" in r.stderr
    assert "downloading, verifying and extracting s3://" in r.stderr
    split_back(b)
    with b.s.connect() as c:
        assert c.execute("SELECT to_regclass('public.hy_after')").fetchone()[0] is None
    out = json.loads(r.stdout)["profiles"][0]
    assert out["mode"] == "snapshot"
    safety = Path(out["safety_archive"])
    assert safety.parent == b.s.path / ".hive-migrate" / "archives" and safety.exists()
    # rollback --backup ID (a unique prefix) finds the snapshot in the journal's repository
    sid = b.journal()["backup_id"]
    r = b.rollback("--backup", sid[:20], "--dry-run")
    assert r.returncode == 0, describe(r)
    assert f"{b.repo}/{sid}/data.tar.zst" in r.stdout
    # the earlier rollback's kept directory is left alone: this one keeps its own
    first_kept = Path(out["displaced_dir"])
    assert first_kept.is_dir()
    r = b.rollback("--backup", sid[:20])
    assert r.returncode == 0, describe(r)
    out2 = json.loads(r.stdout)["profiles"][0]
    assert out2["archive"] == f"{b.repo}/{sid}/data.tar.zst"
    assert first_kept.is_dir() and Path(out2["displaced_dir"]).is_dir()
    assert Path(out2["displaced_dir"]) != first_kept
    shutil.rmtree(first_kept)
    split_back(b)
    r = b.rollback("--backup", "20000101T000000.000Z-00000000")
    assert r.returncode == EXIT_NOT_FOUND, describe(r)
    assert "backups list --repo " + b.repo in one_error_line(r)


def test_killed_before_the_commit_the_snapshot_is_taken_again(bed):
    """kill -9 once the archive is uploaded but before its backup.json (the commit point):
    no backup is listed; the rerun waits for the killed run's lease, finds no snapshot,
    takes it again (the left-over is swept) and migrates."""
    b = bed
    if (b.journal() or {}).get("status") == "done":
        r = b.rollback()
        assert r.returncode == 0, describe(r)
    r = b.up(env=b.env(HIVE_MIGRATE_FAULT="during:snapshot-upload"))
    assert r.returncode == -9, describe(r)
    killed = b.journal()["backup_id"]
    assert killed not in [x["id"] for x in json.loads(b.backups("list", "--json").stdout)]
    r = b.up()
    assert r.returncode == 0, describe(r)
    assert f"the snapshot {killed} of the interrupted run was never completed: taking it again" in r.stderr
    sid = b.journal()["backup_id"]
    assert sid != killed
    listing = {x["id"]: x for x in json.loads(b.backups("list", "--json").stdout)}
    assert listing[sid]["verified"] is True and killed not in listing
    names = b.tool.ok("ls", "snaps", opts=["--recursive"]).stdout
    assert killed not in names, names
    assert b.s.fingerprint() == b.s.before
