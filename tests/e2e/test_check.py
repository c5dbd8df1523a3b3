"""`hive-migrate check` end to end: the real binary against real data directories.

- every bad input (missing directory, not a data directory, truncated / corrupted /
  random / unknown-version pg_control, unreadable files, PG_VERSION disagreeing) gives
  verdict "error", exit 12, JSON with a stable problem code, and one clear line without
  --json; usage errors exit 2;
- the real pg_control samples of fixtures/pgdata (15, 17, 17 crashed, 18);
- a real split stack (PostgreSQL 17 + pgvector, dev prefix "hc-", ports 23886/23532):
  running, filled, then stopped cleanly: compatible with a 17 target, incompatible with
  18 (by --target-major and by --image), and the live check via --stack lists the
  databases and the pgvector version.
"""
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from conftest import HM, ROOT, hm, run

PREFIX = "hc-"
PORTS = {"agent_api": 23886, "agent_pg": 23532}
SAMPLES = ROOT / "fixtures" / "pgdata"
SEEDS = ROOT / "tests" / "fuzz" / "fuzz_pg_control.seeds"


def crc32c(data):
    """CRC-32C (Castagnoli), as PostgreSQL computes pg_control's CRC."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def check_json(*args, **kw):
    """Run check --json; return (exit code, parsed JSON, stderr)."""
    res = hm("check", *args, "--json", **kw)
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (rc {res.returncode}): {res.stdout!r} {res.stderr!r}")
    assert doc["exit_code"] == res.returncode
    return res.returncode, doc, res.stderr


def codes(doc):
    return [p["code"] for p in doc["problems"]]


def make_datadir(path, major=17, control=None, pg_version=None):
    """A minimal data directory: PG_VERSION + global/pg_control (from the seed of major)."""
    path.mkdir(parents=True)
    path.chmod(0o700)
    (path / "global").mkdir()
    if control is None:
        control = (SEEDS / f"pg{major}").read_bytes()
    (path / "global" / "pg_control").write_bytes(control)
    (path / "PG_VERSION").write_text(pg_version if pg_version is not None else f"{major}\n")
    return path


# --- bad inputs (no containers) -------------------------------------------------------------
def _seed17():
    return bytearray((SEEDS / "pg17").read_bytes())


def _flip(b):
    b[100] ^= 0x40
    return bytes(b)


def _unknown_version(b):
    b[8:12] = struct.pack("<I", 1900)
    b[288:292] = struct.pack("<I", crc32c(bytes(b[:288])))
    return bytes(b)


BAD_CONTROLS = {
    "truncated": (lambda: bytes(_seed17()[:4000]), {"control-truncated"}),
    "empty": (lambda: b"", {"control-truncated"}),
    "crc-flip": (lambda: _flip(_seed17()), {"crc-mismatch"}),
    "random": (lambda: os.urandom(8192), {"unknown-version", "crc-mismatch"}),
    "unknown-version": (lambda: _unknown_version(_seed17()), {"unknown-version"}),
    "oversized": (lambda: bytes(_seed17()) + b"\0", {"control-bad-size"}),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONTROLS))
def test_check_bad_pg_control(tmp_path, kind):
    make, want = BAD_CONTROLS[kind]
    d = make_datadir(tmp_path / "pgdata", control=make())
    rc, doc, _ = check_json("--data-dir", d)
    assert rc == 12 and doc["verdict"] == "error", doc
    assert set(codes(doc)) <= want and codes(doc), doc
    p = doc["problems"][0]
    assert p["severity"] == "error" and str(d) in p["message"] and p["hint"], p
    assert doc["control"] is None
    if kind == "unknown-version":
        assert "1900" in p["message"]
    # without --json: exactly one line on stderr, naming the path, with a hint
    res = hm("check", "--data-dir", d)
    assert res.returncode == 12 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hive-migrate: error: "), res.stderr
    assert str(d) in lines[0] and "(hint: " in lines[0]


def test_check_missing_and_not_a_data_dir(tmp_path):
    rc, doc, _ = check_json("--data-dir", tmp_path / "nope")
    assert rc == 12 and codes(doc) == ["missing-directory"], doc
    rc, doc, _ = check_json("--data-dir", tmp_path)
    assert rc == 12 and codes(doc) == ["not-a-data-directory"], doc
    assert "PG_VERSION" in doc["problems"][0]["message"]
    f = tmp_path / "file"
    f.write_text("x")
    rc, doc, _ = check_json("--data-dir", f)
    assert rc == 12 and codes(doc) == ["not-a-data-directory"], doc
    d = tmp_path / "only-version"
    d.mkdir()
    (d / "PG_VERSION").write_text("17\n")
    rc, doc, _ = check_json("--data-dir", d)
    assert rc == 12 and codes(doc) == ["not-a-data-directory"], doc
    assert "global/pg_control" in doc["problems"][0]["message"]
    res = hm("check", "--data-dir", tmp_path / "nope")
    assert res.returncode == 12 and len(res.stderr.strip().splitlines()) == 1


def test_check_pg_version_disagrees(tmp_path):
    d = make_datadir(tmp_path / "pgdata", major=17, pg_version="16\n")
    rc, doc, _ = check_json("--data-dir", d)
    assert rc == 12 and "pg-version-mismatch" in codes(doc), doc
    d2 = make_datadir(tmp_path / "pgdata2", major=17, pg_version="seventeen\n")
    rc, doc, _ = check_json("--data-dir", d2)
    assert rc == 12 and codes(doc) == ["pg-version-invalid"], doc


def test_check_unreadable():
    """chmod 000 files, read by user nobody (root bypasses permissions). pytest's tmp_path
    sits under a 0700 directory nobody cannot traverse: use a 0755 one of our own."""
    if not shutil.which("runuser") or os.geteuid() != 0:
        pytest.skip("needs root and runuser to run the binary as nobody")
    base = Path(tempfile.mkdtemp(prefix="hc-unreadable-"))
    try:
        base.chmod(0o755)
        d = make_datadir(base / "pgdata")
        for p in (d, d / "global"):
            p.chmod(0o755)
        (d / "global" / "pg_control").chmod(0)
        binary = base / "hive-migrate"  # nobody may not traverse the repo's path either
        shutil.copy(HM, binary)
        binary.chmod(0o755)
        res = run(["runuser", "-u", "nobody", "--", binary, "check", "--data-dir", d, "--json"])
        doc = json.loads(res.stdout)
        assert res.returncode == 12 and codes(doc) == ["unreadable"], doc
        assert "Permission denied" in doc["problems"][0]["message"]
        (d / "PG_VERSION").chmod(0)
        res = run(["runuser", "-u", "nobody", "--", binary, "check", "--data-dir", d])
        assert res.returncode == 12, res
        assert "PG_VERSION" in res.stderr and "Permission denied" in res.stderr, res.stderr
        # a 0700 data directory of another user: the directory itself cannot be read
        d.chmod(0o700)
        res = run(["runuser", "-u", "nobody", "--", binary, "check", "--data-dir", d, "--json"])
        doc = json.loads(res.stdout)
        assert res.returncode == 12 and codes(doc) == ["unreadable"], doc
    finally:
        shutil.rmtree(base)


def test_check_usage_errors(tmp_path):
    for args in ([], ["--bogus"], ["--data-dir"], ["--data-dir", tmp_path, "--target-major", "x"],
                 ["--data-dir", tmp_path, "--port", "0", "--host", "h"],
                 ["--stack", tmp_path, "--profile", "nope"],
                 ["--data-dir", tmp_path, "extra"]):
        res = hm("check", *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "error" in res.stderr
    res = hm("check", "--help")
    assert res.returncode == 0 and "--data-dir" in res.stdout and "--json" in res.stdout


# --- the real samples of fixtures/pgdata ----------------------------------------------------
def _sample(tmp_path, name):
    src = SAMPLES / name
    if not (src / "global" / "pg_control").exists():
        pytest.skip(f"fixtures/pgdata/{name} not made (fixtures/pgdata/make-samples.sh)")
    d = tmp_path / name
    shutil.copytree(src, d)
    d.chmod(0o700)
    return d


def test_check_samples(tmp_path):
    uid = str(os.geteuid())
    d17 = _sample(tmp_path, "pg17")
    rc, doc, _ = check_json("--data-dir", d17, "--target-major", "17", "--target-uid", uid)
    assert (rc, doc["verdict"], doc["problems"]) == (0, "compatible", []), doc
    c = doc["control"]
    assert c["pg_control_version"] == 1700 and c["catalog_version_no"] == 202406281
    assert c["state_name"] == "shut down" and doc["pg_version"] == 17
    assert c["blcksz"] == 8192 and c["xlog_seg_size"] == 16 * 1024 * 1024
    # an older major is a supported upgrade across majors (up copies it logically)
    rc, doc, _ = check_json("--data-dir", d17, "--target-major", "18", "--target-uid", uid)
    assert rc == 10 and codes(doc) == ["major-upgrade"], doc

    d18 = _sample(tmp_path, "pg18")
    rc, doc, _ = check_json("--data-dir", d18, "--target-uid", uid)
    assert rc == 11 and codes(doc) == ["major-mismatch"], doc   # newer than the target
    assert doc["control"]["default_char_signedness"] == "signed"
    rc, doc, _ = check_json("--data-dir", d18, "--target-major", "18", "--target-uid", uid)
    assert rc == 0, doc

    d15 = _sample(tmp_path, "pg15")
    rc, doc, _ = check_json("--data-dir", d15, "--target-uid", uid)
    assert rc == 10 and codes(doc) == ["major-upgrade"], doc
    assert "docs/migration.md" in doc["problems"][0]["hint"]

    dc = _sample(tmp_path, "pg17-crashed")
    rc, doc, _ = check_json("--data-dir", dc, "--target-uid", uid)
    assert rc == 11 and codes(doc) == ["crashed"], doc
    assert "docker compose stop -t 30" in doc["problems"][0]["hint"]
    res = hm("check", "--data-dir", dc, "--target-uid", uid)
    assert res.returncode == 11 and "[crashed]" in res.stdout and "verdict: incompatible" in res.stdout

    # warnings: owner uid and mode
    d17.chmod(0o755)
    rc, doc, _ = check_json("--data-dir", d17, "--target-uid", "4242")
    assert rc == 10 and sorted(codes(doc)) == ["mode", "owner-uid"], doc
    assert all(p["severity"] == "warning" for p in doc["problems"])


def test_check_tablespace_outside(tmp_path):
    d = make_datadir(tmp_path / "pgdata")
    (d / "pg_tblspc").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (d / "pg_tblspc" / "16384").symlink_to(outside)
    rc, doc, _ = check_json("--data-dir", d, "--target-uid", str(os.geteuid()))
    assert rc == 11 and codes(doc) == ["tablespace-outside"], doc
    assert "16384" in doc["problems"][0]["message"]


def test_check_low_disk(tmp_path):
    """--snapshot-dir on a tiny tmpfs: less than a quarter of the data -> incompatible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = make_datadir(tmp_path / "pgdata")
    (d / "base").mkdir()
    (d / "base" / "big").write_bytes(b"\1" * (8 * 1024 * 1024))
    small = tmp_path / "small"
    small.mkdir()
    if run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        rc, doc, _ = check_json("--data-dir", d, "--target-uid", str(os.geteuid()),
                                "--snapshot-dir", small)
        assert rc == 11 and codes(doc) == ["low-disk"], doc
        assert doc["data_directory"]["free_path"] == str(small)
    finally:
        run(["umount", small])


# --- a real split stack ---------------------------------------------------------------------
@pytest.fixture
def filled_stack(make_split_stack):
    s = make_split_stack("stack", profile="agent", name_prefix=PREFIX, ports=PORTS)
    s.up(timeout=180)
    s.fill("5MB", seed=3)
    return s


def test_check_split_stack(filled_stack, split_images_18):
    s = filled_stack
    with s.connect() as conn:
        vec = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                           ).fetchone()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    # live: found through the compose file; the running server is a warning, not a crash
    rc, doc, _ = check_json("--stack", s.path, "--profile", "agent", "--target-uid", "999",
                            env=env)
    assert doc["data_dir"] == str(s.data_dir())
    assert doc["server"]["connected"] is True and doc["server"]["running"] is True, doc
    assert doc["control"]["state_name"] == "in production"
    assert "server-running" in codes(doc) and "crashed" not in codes(doc), doc
    assert rc == 10 and doc["verdict"] == "warnings", doc
    names = [db["name"] for db in doc["databases"]]
    assert "hive_agent" in names, doc["databases"]
    assert all(db["size_bytes"] > 0 for db in doc["databases"])
    exts = {(e["database"], e["name"]): e["version"] for e in doc["extensions"]}
    assert exts[("hive_agent", "vector")] == vec
    assert s.password() not in json.dumps(doc)
    res = hm("check", "--stack", s.path, "--profile", "agent", env=env)
    assert "hive_agent" in res.stdout and f"vector {vec}" in res.stdout, res.stdout
    assert s.password() not in res.stdout + res.stderr

    # the same live checks with explicit connection options, password from PGPASSWORD
    env2 = dict(env, PGPASSWORD=s.password())
    rc, doc, _ = check_json("--data-dir", s.data_dir(), "--host", "127.0.0.1", "--port",
                            str(s.pg_port()), "--user", s.user(), "--dbname", s.dbname(),
                            "--target-uid", "999", env=env2)
    assert doc["server"]["connected"] is True and "hive_agent" in [
        db["name"] for db in doc["databases"]], doc

    # stopped cleanly: compatible with 17, incompatible with 18
    s.stop(timeout=30)
    assert s.pg_state() == "shut down"
    rc, doc, _ = check_json("--data-dir", s.data_dir(), "--target-major", "17",
                            "--target-uid", "999")
    assert (rc, doc["verdict"], doc["problems"]) == (0, "compatible", []), doc
    assert doc["control"]["state_name"] == "shut down"
    assert doc["data_directory"]["owner_uid"] == 999
    # the default target uid (1000): only the ownership warning, nothing incompatible
    rc, doc, _ = check_json("--data-dir", s.data_dir(), "--target-major", "17")
    assert rc == 10 and codes(doc) == ["owner-uid"], doc
    assert "999 -> 1000" in doc["problems"][0]["message"]
    # through the stack, stopped: no connection, no server
    rc, doc, _ = check_json("--stack", s.path, "--profile", "agent", "--target-uid", "999",
                            env=env)
    assert rc == 0 and doc["server"]["connected"] is False, doc
    # 18 target, by number and by image (major and pgvector read from the image): an
    # upgrade across majors, no chown across majors (no owner-uid)
    rc, doc, _ = check_json("--data-dir", s.data_dir(), "--target-major", "18")
    assert rc == 10 and codes(doc) == ["major-upgrade"], doc
    rc, doc, _ = check_json("--data-dir", s.data_dir(), "--image",
                            "localhost/hive-split-postgres:18")
    assert rc == 10 and "major-upgrade" in codes(doc), doc
    assert doc["target"]["major"] == 18 and doc["target"]["pgvector"] == "0.8.7", doc
    res = hm("check", "--data-dir", s.data_dir(), "--target-major", "18")
    assert res.returncode == 10 and "[major-upgrade]" in res.stdout
    # check changed nothing
    assert s.pg_state() == "shut down" and s.data_dir().stat().st_uid == 999
