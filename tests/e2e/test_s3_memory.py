"""End-to-end: a 2 GB cluster backed up to the test bed's real radosgw (offline and online)
with peak memory below 64 MB, restored byte for byte (issue 12).

The data directory holds 2 GB on disk that is cheap to make and to upload yet spans many
multipart parts: two 1000 MiB files allocated with posix_fallocate (blocks on disk, read
as zeros: zstd makes almost nothing of them) and 128 MiB of random bytes (incompressible:
about 26 parts of 5 MiB). Peak RSS is each run's own (wait4's ru_maxrss of the process
itself). Ports 34010-34012; bucket hx-<random>.
"""
import hashlib
import json
import os
import pwd
import stat
import uuid
from pathlib import Path

import pytest

import ho_pg
from s3_helpers import Tool, objstore  # noqa: F401 (fixture)
from test_s3_repo import Repo, run_measured

SRC_PORT, RESTORED_PORT = 34010, 34011
MiB = 1 << 20
LIMIT = 64 << 20

pytestmark = pytest.mark.skipif(not ho_pg.available(), reason="needs root and postgresql-15")


@pytest.fixture
def hx_bucket(objstore, tmp_path):  # noqa: F811
    """(name, Tool) on a new bucket hx-<random>, emptied and removed afterwards."""
    name = f"hx-{uuid.uuid4().hex[:10]}"
    home = tmp_path / "tool-home"
    home.mkdir()
    t = Tool(objstore, f"s3://{name}", home)
    t.ok("mb")
    yield name, t
    t("sweep")
    t("rmdir", "")
    t("rb")


def big_cluster():
    """A stopped PostgreSQL 15 whose data directory holds about 2.1 GB on disk."""
    c = ho_pg.Cluster.create(SRC_PORT, prefix="hx-pg-")
    c.start()
    c.seed()
    c.stop()
    for i in (1, 2):
        fd = os.open(c.data / "base" / f"hx_zero.{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, 1000 * MiB)
        finally:
            os.close(fd)
    with open(c.data / "base" / "hx_random", "xb") as f:
        for _ in range(128):
            f.write(os.urandom(MiB))
    pg = pwd.getpwnam("postgres")
    for p in c.data.glob("base/hx_*"):
        os.chown(p, pg.pw_uid, pg.pw_gid)   # the server reads them for the online backup
    return c


ZEROS = bytes(4 * MiB)


def content(path):
    """A file's content, compared byte for byte: "zeros" if every byte is 0 (a memcmp per
    4 MiB, far quicker than hashing 2 GB), else its sha256."""
    h, zero = hashlib.sha256(), True
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            if zero and chunk == ZEROS[:len(chunk)]:
                continue
            if zero:                       # the zeros so far, then this chunk
                zero = False
                done = f.tell() - len(chunk)
                for _ in range(done // len(ZEROS)):
                    h.update(ZEROS)
                h.update(ZEROS[:done % len(ZEROS)])
            h.update(chunk)
    return "zeros" if zero else h.hexdigest()


def tree(root):
    """{relative path: (type, mode, size, content or link target)} of a directory tree."""
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
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_size, content(p))
    return out


def measured(repo, tmp_path, *args):
    """Run hive-migrate ARGS --repo ... measured: exit 0 and peak RSS below 64 MB asserted."""
    r = run_measured(repo.argv(*args), repo.env(), tmp_path / "rusage")
    assert r.returncode == 0, r.stderr
    assert repo.store.secret_key not in r.stdout + r.stderr
    assert r.rss < LIMIT, f"{args[0]} {args[1]}: peak RSS {r.rss >> 20} MiB"
    return r


def test_2gb_backup_to_s3_below_64mb(objstore, hx_bucket, tmp_path):  # noqa: F811
    """Offline and online backups of a 2 GB cluster stream to S3 in many parts with peak RSS
    below 64 MB; verify passes, the offline one restores byte for byte and starts."""
    name, tool = hx_bucket
    repo = Repo(objstore, name, "mem", tmp_path)
    src = big_cluster()
    restored = ho_pg.Cluster.blank(RESTORED_PORT)
    try:
        on_disk = sum(p.lstat().st_blocks * 512 for p in src.data.rglob("*") if p.is_file())
        assert on_disk >= 2000 * MiB, f"the data directory holds {on_disk} bytes on disk"
        want = tree(src.data)

        off = json.loads(measured(repo, tmp_path, "backup", "--offline", "--data-dir", src.data,
                                  "--json").stdout)
        assert off["database_size"] >= 2000 * MiB
        etag = tool.ok("stat", f"mem/{off['id']}/{off['stored']['name']}").stdout.split("\t")[2]
        parts = int(etag.rsplit("-", 1)[1])
        assert parts >= 20, f"a multipart object of many parts ({etag})"

        src.start()
        on = json.loads(measured(repo, tmp_path, "backup", *src.backup_args(), "--json").stdout)
        assert on["kind"] == "online" and on["database_size"] >= 2000 * MiB
        src.stop()

        measured(repo, tmp_path, "backups", "verify", on["id"])
        measured(repo, tmp_path, "backups", "restore", off["id"], "--to", restored.data)
        assert tree(restored.data) == want
        restored.start()
        assert restored.query("SELECT count(*) FROM items") == [(20000,)]
    finally:
        restored.remove()
        src.remove()
