"""End-to-end: encryption at rest (`--encrypt-key-file`, `--encrypt-passphrase-file`) on backup,
verify and restore, in a local repository and in the test bed's radosgw (s3://), with the
host's PostgreSQL 15 (tests/e2e/ho_pg.py, ports 29534-29535). Every failure case must fail
with one clear line and leave nothing restored: no target, no TARGET.restoring-* sibling.
"""
import json
import os
import shutil

import pytest

import ho_pg
from conftest import hm
from s3_helpers import bucket, objstore  # noqa: F401 (fixtures)
from test_backup import tree
from test_s3_repo import Repo, one_error_line

PORT, RESTORED_PORT = 29534, 29535
EXIT_INPUT, EXIT_CORRUPT, EXIT_PERMISSION, EXIT_VERIFY_FAILED = 20, 21, 22, 40
MAGIC = b"HMCRYPT\0"

pytestmark = pytest.mark.skipif(not ho_pg.available(), reason="needs root and postgresql-15")


@pytest.fixture(scope="module")
def pg():
    c = ho_pg.Cluster.create(PORT)
    try:
        c.start()
        c.seed(random_mb=1)
        yield c
    finally:
        c.remove()


@pytest.fixture
def keys(tmp_path):
    """A key file, another key file (hex), a passphrase file, all 0600."""
    k1, k2, pw = tmp_path / "key1", tmp_path / "key2", tmp_path / "pass"
    k1.write_bytes(os.urandom(32))
    k2.write_text(os.urandom(32).hex() + "\n")
    pw.write_text("correct horse battery staple\n")
    for f in (k1, k2, pw):
        f.chmod(0o600)
    return k1, k2, pw


def local(*args, **kw):
    r = hm(*args, timeout=300, **kw)
    return r


def nothing_restored(target):
    assert not target.exists(), f"{target} was created"
    assert [p for p in target.parent.iterdir() if p.name.startswith(target.name + ".")] == []


def offline_backup(pg, repo, *extra, snapshot=None):
    """An offline backup of pg (stopped for it); snapshot (a dict) gets the tree backed up."""
    pg.stop()
    try:
        r = local("backup", "--offline", "--data-dir", pg.data, "--repo", repo, "--json", *extra)
        assert r.returncode == 0, r.stderr
        if snapshot is not None:
            snapshot.update(tree(pg.data))
        return json.loads(r.stdout)
    finally:
        pg.start()


def test_key_file_round_trip_local_and_s3(objstore, bucket, pg, keys, tmp_path):
    """Online to S3 and offline to a local directory with a key file: the stored objects are
    ciphertext (magic, no plain archive beside them), backup.json keeps what list needs and
    not the source, verify without the key checks the outer digests only and says so, with
    the key checks everything; restores start (online) and are identical (offline)."""
    k1, _, _ = keys
    name, tool = bucket
    repo = Repo(objstore, name, "enc", tmp_path)
    b = json.loads(repo.backup(pg, "--encrypt-key-file", k1).stdout)
    assert b["encryption"]["kdf"] == "key" and len(b["encryption"]["key_id"]) == 32
    # backup --json prints what list shows without the key, nothing of the sealed metadata
    assert "source" not in b and "connection" not in b and b["members"] == []
    assert "start_lsn" not in b and "system_identifier" not in b and not b.get("database_size")
    assert b["stored"]["name"] == "backup.tar.hmenc"
    got = tool("get", f"enc/{b['id']}/backup.tar.hmenc", text=False).stdout
    assert got.startswith(MAGIC) and len(got) == b["stored"]["size"]
    [item] = repo.listing()
    assert item["id"] == b["id"] and item["kind"] == "online" and "source" not in item
    assert item["members"] == [] and "start_lsn" not in item and "system_identifier" not in item
    assert f"{b['id']}/backup.json.hmenc" in [line.split("\t")[0] for line in
                                               tool.ok("ls", "enc", opts=["--recursive"]).stdout.splitlines()]
    r = repo.ok("backups", "verify", b["id"])
    assert "contents not checked" in r.stdout
    r = repo.ok("backups", "verify", b["id"], "--encrypt-key-file", k1)
    assert "ok (" in r.stdout
    restored = ho_pg.Cluster.blank(RESTORED_PORT)
    try:
        repo.ok("backups", "restore", b["id"], "--to", restored.data, "--encrypt-key-file", k1)
        restored.start()
        assert restored.digest() == pg.digest()
    finally:
        restored.remove()

    lrepo = tmp_path / "repo"
    backed_up = {}
    o = offline_backup(pg, lrepo, "--encrypt-key-file", k1, snapshot=backed_up)
    assert "source" not in o and o["members"] == [] and not o.get("database_size")
    files = sorted(p.name for p in (lrepo / o["id"]).iterdir())
    assert files == ["backup.json", "backup.json.hmenc", "data.tar.zst.hmenc"], files
    assert (lrepo / o["id"] / "data.tar.zst.hmenc").read_bytes().startswith(MAGIC)
    assert (lrepo / o["id"] / "backup.json.hmenc").read_bytes().startswith(MAGIC)
    readable = json.loads((lrepo / o["id"] / "backup.json").read_text())
    for secret_fact in ("source", "system_identifier", "database_size"):
        assert secret_fact not in readable or not readable[secret_fact], secret_fact
    assert readable["members"] == [] and readable["kind"] == "offline"
    r = local("backups", "verify", o["id"], "--repo", lrepo, "--encrypt-key-file", k1)
    assert r.returncode == 0, r.stderr
    restored = ho_pg.Cluster.blank(RESTORED_PORT)
    try:
        r = local("backups", "restore", o["id"], "--repo", lrepo, "--to", restored.data, "--encrypt-key-file", k1)
        assert r.returncode == 0, r.stderr
        assert tree(restored.data) == backed_up
    finally:
        restored.remove()


def test_wrong_or_missing_key_fails_clearly_and_restores_nothing(pg, keys, tmp_path):
    """Another key, a passphrase for a key-file backup, no key: one line each, exit 20, nothing
    restored, and the backup is not marked failed (the check could not run)."""
    k1, k2, pw = keys
    repo = tmp_path / "repo"
    b = offline_backup(pg, repo, "--encrypt-key-file", k1)
    target = tmp_path / "target"
    for extra, words in ((["--encrypt-key-file", k2], "wrong key"),
                         (["--encrypt-passphrase-file", pw], "not a passphrase"),
                         ([], "no key was given")):
        r = local("backups", "restore", b["id"], "--repo", repo, "--to", target, *extra)
        assert r.returncode == EXIT_INPUT, (extra, r.stderr)
        assert words in one_error_line(r)
        nothing_restored(target)
    r = local("backups", "verify", b["id"], "--repo", repo, "--encrypt-key-file", k2)
    assert r.returncode == EXIT_INPUT and "wrong key" in one_error_line(r)
    listed = json.loads(local("backups", "list", "--repo", repo, "--json").stdout)
    assert listed[0]["verified"] is None


def test_passphrase_round_trip_and_wrong_passphrase(pg, keys, tmp_path):
    """A passphrase file (Argon2id, parameters in the stream header): round trip; a wrong
    passphrase fails with one line and restores nothing."""
    _, _, pw = keys
    repo = tmp_path / "repo"
    r = local("backup", *pg.backup_args(), "--repo", repo, "--json", "--encrypt-passphrase-file", pw)
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["encryption"]["kdf"] == "argon2id" and "key_id" not in b["encryption"]
    r = local("backups", "verify", b["id"], "--repo", repo, "--encrypt-passphrase-file", pw)
    assert r.returncode == 0, r.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    wrong.chmod(0o600)
    target = tmp_path / "target"
    r = local("backups", "restore", b["id"], "--repo", repo, "--to", target, "--encrypt-passphrase-file", wrong)
    assert r.returncode == EXIT_INPUT and "wrong passphrase" in one_error_line(r)
    nothing_restored(target)
    restored = ho_pg.Cluster.blank(RESTORED_PORT)
    try:
        r = local("backups", "restore", b["id"], "--repo", repo, "--to", restored.data,
                  "--encrypt-passphrase-file", pw)
        assert r.returncode == 0, r.stderr
        restored.start()
        assert restored.digest() == pg.digest()
    finally:
        restored.remove()


def rewrite(repo, b, change):
    """Apply change(bytes) -> bytes to the stored object, then (as an attacker who can write
    the repository would) make backup.json's outer digests match the new bytes."""
    import hashlib
    d = repo / b["id"]
    obj = d / b["stored"]["name"]
    data = change(obj.read_bytes())
    obj.write_bytes(data)
    meta = json.loads((d / "backup.json").read_text())
    meta["stored"]["size"] = len(data)
    meta["stored"]["sha256"] = hashlib.sha256(data).hexdigest()
    (d / "backup.json").write_text(json.dumps(meta))


def flip(data, at):
    data = bytearray(data)
    data[at] ^= 0x01
    return bytes(data)


@pytest.mark.parametrize("case", ["tampered", "header", "truncated", "extended", "flip-only", "sealed"])
def test_damaged_ciphertext_fails_verify_and_restore(pg, keys, tmp_path, case):
    """Ciphertext changed in the middle, in its header, cut short, extended (with the outer
    digests fixed up to match), or only flipped (outer digests left): verify and restore fail
    clearly and nothing is restored."""
    k1, _, _ = keys
    repo = tmp_path / "repo"
    b = offline_backup(pg, repo, "--encrypt-key-file", k1)
    size = b["stored"]["size"]
    if case == "tampered":
        rewrite(repo, b, lambda d: flip(d, size // 2))
    elif case == "header":
        rewrite(repo, b, lambda d: flip(d, 20))
    elif case == "truncated":
        rewrite(repo, b, lambda d: d[: size - 100])
    elif case == "extended":
        rewrite(repo, b, lambda d: d + os.urandom(200))
    elif case == "sealed":  # the encrypted copy of the metadata
        sealed = repo / b["id"] / "backup.json.hmenc"
        sealed.write_bytes(flip(sealed.read_bytes(), len(sealed.read_bytes()) - 5))
    else:
        obj = repo / b["id"] / b["stored"]["name"]
        obj.write_bytes(flip(obj.read_bytes(), size // 3))
    r = local("backups", "verify", b["id"], "--repo", repo, "--encrypt-key-file", k1)
    assert r.returncode in (EXIT_VERIFY_FAILED, EXIT_CORRUPT), (case, r.returncode, r.stderr)
    assert "error:" in r.stderr
    target = tmp_path / "target"
    r = local("backups", "restore", b["id"], "--repo", repo, "--to", target, "--encrypt-key-file", k1)
    assert r.returncode in (EXIT_VERIFY_FAILED, EXIT_CORRUPT), (case, r.returncode, r.stderr)
    assert len([x for x in r.stderr.splitlines() if "error:" in x]) == 1, r.stderr
    nothing_restored(target)
    if case == "flip-only":  # the outer digest catches it even without the key
        r = local("backups", "verify", b["id"], "--repo", repo)
        assert r.returncode == EXIT_VERIFY_FAILED, r.stderr


def test_key_file_rules(pg, keys, tmp_path):
    """A key file others can read (exit 22), a missing key file (exit 20), both options at once
    (exit 2): refused before anything is written."""
    k1, _, pw = keys
    repo = tmp_path / "repo"
    loose = tmp_path / "loose"
    shutil.copy(k1, loose)
    loose.chmod(0o644)
    cases = ((["--encrypt-key-file", loose], EXIT_PERMISSION, "readable or writable by others"),
             (["--encrypt-key-file", tmp_path / "missing"], EXIT_INPUT, "cannot open the key file"),
             (["--encrypt-key-file", k1, "--encrypt-passphrase-file", pw], 2, "exclude each other"))
    for extra, code, words in cases:
        r = local("backup", *pg.backup_args(), "--repo", repo, *extra)
        assert r.returncode == code, (extra, r.stderr)
        assert words in one_error_line(r)
        assert not repo.exists()
