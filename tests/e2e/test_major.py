"""hive-migrate up across PostgreSQL majors, end to end on real containers: a PostgreSQL 15
split stack (bookworm, pgvector built from trixie's source) with hive data (HNSW index,
jsonb, several schemas), a second database and two more roles, moved onto the unified 17
container. The old directory must stay byte for byte as its verified snapshot, the data
must be equal, pgvector must work and the roles must keep their passwords. (No Debian suite
reachable here ships PostgreSQL 16, the major users run: 15 stands in for it.)"""
import json
import os
from pathlib import Path

import psycopg
import pytest

from conftest import HM, ROOT, run
from major_helpers import (API_PORT, EXIT_PREFLIGHT, IMAGE, PG_PORT, READER_PASSWORD, UNIFIED,
                           all_fingerprint, docker, journal, new_building, new_stack, old_kept,
                           remove_unified, snapshot_tree, tree, up)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    s = new_stack(tmp_path_factory.mktemp("hj-major"))
    yield s
    remove_unified()
    s.down()


def test_check_reports_major_upgrade(stack):
    with stack.connect() as c:
        c.execute("SET password_encryption = 'md5'")
        c.execute("CREATE ROLE hj_md5 LOGIN PASSWORD 'old-style'")
    res = run([HM, "check", "--stack", stack.path, "--profile", "agent", "--image", IMAGE, "--json"])
    rep = json.loads(res.stdout)
    codes = {p["code"]: p for p in rep["problems"]}
    assert res.returncode == 10, res.stderr
    assert rep["verdict"] == "warnings"
    assert "major-upgrade" in codes and "major-mismatch" not in codes
    assert codes["major-upgrade"]["severity"] == "warning"
    assert "PostgreSQL 15" in codes["major-upgrade"]["message"]
    assert "estimated downtime" in codes["major-upgrade"]["message"]
    assert codes["md5-passwords"]["severity"] == "warning" and "hj_md5" in codes["md5-passwords"]["message"]
    assert set(codes) <= {"major-upgrade", "md5-passwords", "server-running"}, codes
    # the dry run shows the whole plan and changes nothing
    res = up(stack, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "pg_dump -Fd" in res.stdout and ".pg15-old" in res.stdout, res.stdout
    assert "estimated downtime" in res.stdout
    assert stack.api_healthy() and journal(stack) is None


def check_json(stack):
    res = run([HM, "check", "--stack", stack.path, "--profile", "agent", "--image", IMAGE, "--json"])
    return res.returncode, json.loads(res.stdout)


def assert_refused(stack, code, needle):
    """check says incompatible with code; up exits 37 naming it; nothing changed."""
    before = all_fingerprint(stack)
    rc, rep = check_json(stack)
    assert rc == 11 and rep["verdict"] == "incompatible", rep
    codes = {p["code"]: p for p in rep["problems"]}
    assert code in codes and "major-upgrade" in codes, codes
    assert needle in codes[code]["message"]
    res = up(stack)
    assert res.returncode == EXIT_PREFLIGHT, res.stderr[-3000:]
    assert needle in res.stderr
    assert journal(stack) is None
    assert stack.api_healthy() and stack.pg_version() == "15"
    assert all_fingerprint(stack) == before
    assert not old_kept(stack).exists() and not new_building(stack).exists()


def test_refuses_extension_the_target_lacks(stack):
    ext = "/usr/share/postgresql/15/extension"
    docker("exec", "-u", "root", stack.container(), "sh", "-c",
           f"printf \"comment = 'test'\\ndefault_version = '1.0'\\nrelocatable = true\\n\" > {ext}/hj_fake.control && "
           f"echo 'CREATE FUNCTION hj_fake() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;' > {ext}/hj_fake--1.0.sql",
           check=True)
    with stack.connect() as c:
        c.execute("CREATE EXTENSION hj_fake")
    try:
        assert_refused(stack, "extension-missing", "hj_fake")
    finally:
        with stack.connect() as c:
            c.execute("DROP EXTENSION hj_fake")


def test_refuses_tablespace_outside(stack):
    docker("exec", "-u", "root", stack.container(), "sh", "-c",
           "mkdir -p /var/lib/postgresql/hj_ts && chown postgres:postgres /var/lib/postgresql/hj_ts",
           check=True)
    with stack.connect() as c:
        c.execute("CREATE TABLESPACE hj_ts LOCATION '/var/lib/postgresql/hj_ts'")
    try:
        assert_refused(stack, "tablespace-outside", "tablespace")
    finally:
        with stack.connect() as c:
            c.execute("DROP TABLESPACE hj_ts")


def test_locale_the_target_lacks(stack):
    """A database on en_US.UTF-8 (the unified image only has C.UTF-8): refused with the way
    forward, accepted with --locale-map (the up test below migrates it mapped)."""
    docker("exec", "-u", "root", stack.container(), "localedef", "-i", "en_US", "-f", "UTF-8", "en_US.UTF-8",
           check=True)
    stack.stop()   # glibc maps the locale archive once per process: restart the server
    stack.up()
    with stack.connect() as c:
        c.execute("CREATE DATABASE hj_loc OWNER hj_owner TEMPLATE template0 ENCODING 'UTF8' "
                  "LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'")
    dsn = stack.dsn().replace("dbname=hive_agent", "dbname=hj_loc")
    with psycopg.connect(dsn, password=stack.password(), autocommit=True) as c:
        c.execute("CREATE TABLE words (w text PRIMARY KEY)")
        c.execute("INSERT INTO words VALUES ('apple'), ('Banana'), ('cherry'), ('\u00e9clair')")
    with stack.connect() as c:   # database-level properties, which the mapped path must carry
        c.execute("COMMENT ON DATABASE hj_loc IS 'mapped words'")
        c.execute("ALTER DATABASE hj_loc SET work_mem = '7MB'")
        c.execute("GRANT CREATE ON DATABASE hj_loc TO hj_reader")
    assert_refused(stack, "locale-missing", "en_US.UTF-8")
    res = run([HM, "check", "--stack", stack.path, "--profile", "agent", "--image", IMAGE, "--json",
               "--locale-map", "en_US.UTF-8=C.UTF-8"])
    rep = json.loads(res.stdout)
    codes = {p["code"]: p for p in rep["problems"]}
    assert res.returncode == 10 and "locale-missing" not in codes, rep
    assert "C.UTF-8" in codes["locale-mapped"]["message"]
    res = run([HM, "check", "--stack", stack.path, "--locale-map", "nonsense"])
    assert res.returncode == 2 and "OLD=NEW" in res.stderr


def test_refuses_newer_major(engine):
    """A PostgreSQL 18 directory cannot go onto the 17 image: refused with the way forward."""
    res = run([HM, "check", "--data-dir", ROOT / "fixtures" / "pgdata" / "pg18", "--target-major", "17",
               "--json"])
    rep = json.loads(res.stdout)
    codes = {p["code"]: p for p in rep["problems"]}
    assert res.returncode == 11 and "major-mismatch" in codes and "major-upgrade" not in codes
    assert "newer than the target" in codes["major-mismatch"]["message"]
    assert "hive-unified:18" in codes["major-mismatch"]["hint"]
    # a real PostgreSQL 15 directory: the 16-style case, a supported upgrade
    res = run([HM, "check", "--data-dir", ROOT / "fixtures" / "pgdata" / "pg15", "--target-major", "17",
               "--json"])
    rep = json.loads(res.stdout)
    assert rep["verdict"] == "warnings", rep
    codes = [p["code"] for p in rep["problems"]]
    assert "major-upgrade" in codes and set(codes) <= {"major-upgrade", "mode"}, codes  # sample is 0755


def test_up_across_majors(stack):
    before = all_fingerprint(stack)
    assert before["hive_agent:agno.knowledge_base"][0] > 0
    assert before["hj_extra:notes.items"][0] == 500
    res = up(stack, "--json", "--locale-map", "en_US.UTF-8=C.UTF-8")
    assert res.returncode == 0, res.stderr[-6000:]
    summ = json.loads(res.stdout)["profiles"][0]
    assert summ["result"] == "migrated" and summ["cross_major"] is True and summ["old_major"] == 15
    assert summ["old_data_dir"].endswith(".pg15-old") and summ["downtime_seconds"] > 0
    j = journal(stack)
    assert j["status"] == "done" and j["cross_major"] == 1 and j["old_major"] == 15
    # the canonical place holds the new 17 cluster; the old 15 directory is kept beside it
    assert stack.pg_version() == "17"
    kept = old_kept(stack)
    assert (kept / "pgdata" / "PG_VERSION").read_text().strip() == "15"
    assert not new_building(stack).exists()
    # byte for byte the verified snapshot taken right after its clean stop, owner unchanged
    assert tree(kept) == snapshot_tree(j["archive"])
    assert kept.stat().st_uid == 999 and (kept / "pgdata").stat().st_uid == 999
    # the dump is kept under STACK/.hive-migrate
    assert (stack.path / ".hive-migrate" / "dump-agent" / "globals.sql").is_file()
    # the unified container: healthy, same data, pgvector working, passwords kept
    st = run(["docker", "inspect", "-f", "{{.State.Status}}", UNIFIED]).stdout.strip()
    assert st == "running"
    assert stack.api_healthy()
    assert all_fingerprint(stack) == before
    with stack.connect() as c:
        assert c.execute("SHOW server_version_num").fetchone()[0].startswith("17")
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        near = c.execute("SELECT count(*) FROM (SELECT id FROM agno.knowledge_base ORDER BY "
                         "embedding <=> (SELECT embedding FROM agno.knowledge_base LIMIT 1) "
                         "LIMIT 5) x").fetchone()[0]
        assert near == 5
        idx = c.execute("SELECT count(*) FROM pg_indexes WHERE indexdef ILIKE '%USING hnsw%'").fetchone()[0]
        assert idx >= 1
    dsn = f"host=127.0.0.1 port={PG_PORT} dbname=hive_agent connect_timeout=5"
    with psycopg.connect(dsn, user="hj_reader", password=READER_PASSWORD) as c:
        assert c.execute("SELECT count(*) FROM agno.knowledge_base").fetchone()[0] > 0
    with psycopg.connect(dsn.replace("hive_agent", "hj_extra"), user="hj_owner", password="owner-pw") as c:
        assert c.execute("SELECT count(*) FROM notes.items WHERE emb <-> '[1,2,3]' < 1").fetchone()[0] == 1
    with psycopg.connect(dsn.replace("hive_agent", "hj_loc"), user="agent", password=stack.password()) as c:
        assert c.execute("SELECT datcollate, datctype FROM pg_database WHERE datname = 'hj_loc'").fetchone() == (
            "C.UTF-8", "C.UTF-8")
        assert c.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'hj_loc'").fetchone()[0] == "hj_owner"
        assert c.execute("SELECT count(*) FROM words").fetchone()[0] == 4
        assert c.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         "WHERE datname = 'hj_loc'").fetchone()[0] == "mapped words"
        assert c.execute("SHOW work_mem").fetchone()[0] == "7MB"
        assert c.execute("SELECT has_database_privilege('hj_reader', 'hj_loc', 'CREATE')").fetchone()[0]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, user="hj_reader", password="wrong").close()
    # a second up has nothing to do
    res = up(stack)
    assert res.returncode == 0 and "already migrated" in res.stderr
    assert API_PORT


EXIT_WRITES_WOULD_BE_LOST = 39


def rollback(s, *args):
    e = dict(os.environ)
    e.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
    return run([HM, "rollback", "--stack", s.path, "--profile", "agent", "--yes",
                "--health-timeout", "180", *args], env=e, timeout=900)


def test_rollback_after_completed_keeps_new_writes_aside(stack):
    """After a completed cross-major up, writes on the unified 17 cannot go back into 15:
    rollback refuses without --discard-new-writes and names what would be left behind;
    with it, the split stack runs on the untouched old directory and the new cluster, with
    the writes, is kept stopped cleanly as DATA.pg17-new, and a later up will not reuse it."""
    migrated = all_fingerprint(stack)          # equal to the pre-migration data (above)
    with stack.connect() as c:
        c.execute("CREATE TABLE public.hj_after_cutover (id int PRIMARY KEY, note text)")
        c.execute("INSERT INTO public.hj_after_cutover SELECT g, 'w' || g FROM generate_series(1, 7) g")
    res = rollback(stack)
    assert res.returncode == EXIT_WRITES_WOULD_BE_LOST, res.stderr[-4000:]
    assert "--discard-new-writes" in res.stderr and "hj_after_cutover" in res.stderr
    assert stack.pg_version() == "17" and stack.api_healthy()     # nothing was changed
    assert journal(stack)["status"] == "done"
    res = rollback(stack, "--discard-new-writes", "--dry-run")
    assert res.returncode == 0, res.stderr[-3000:]
    assert ".pg17-new" in res.stdout and "nothing was changed" in res.stdout
    assert stack.pg_version() == "17"
    res = rollback(stack, "--discard-new-writes", "--json")
    assert res.returncode == 0, res.stderr[-6000:]
    assert "hj_after_cutover" in res.stderr                # what was left behind, said
    # the split stack: PostgreSQL 15, exactly the pre-migration data
    assert stack.api_healthy() and stack.pg_version() == "15"
    assert all_fingerprint(stack) == migrated
    assert not old_kept(stack).exists()
    j = journal(stack)
    assert j["status"] == "rolled-back" and j["cross_major"] == 1
    # the new cluster is kept, whole, with the writes: stopped cleanly, never removed
    kept_new = new_building(stack)
    pgdata = kept_new / "pgdata" if (kept_new / "pgdata").is_dir() else kept_new
    assert (pgdata / "PG_VERSION").read_text().strip() == "17"
    # pg_control: system identifier (8 bytes), two uint32 versions, then the state; 1 = shut down
    state = int.from_bytes((pgdata / "global" / "pg_control").read_bytes()[16:20], "little")
    assert state == 1, state
    st = run(["docker", "inspect", "-f", "{{.State.Status}}", UNIFIED])
    assert st.returncode != 0 or st.stdout.strip() != "running"
    # a new up refuses to start over the kept cluster (it holds the writes)
    res = up(stack, "--locale-map", "en_US.UTF-8=C.UTF-8")
    assert res.returncode == EXIT_PREFLIGHT, res.stderr[-4000:]
    assert ".pg17-new" in res.stderr and "exists already" in res.stderr
    assert (pgdata / "PG_VERSION").read_text().strip() == "17"
    assert stack.pg_version() == "15" and stack.api_healthy()
