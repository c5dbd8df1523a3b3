"""Helpers for tests/e2e/test_major*.py: a PostgreSQL 15 split stack (fixtures/split, image
localhost/hive-split-postgres:15 from bookworm with pgvector built from trixie's source)
with hive data, a second database and a second role, under the "hj-" prefix on ports
30886 (API) / 30532 (PostgreSQL), migrated by `hive-migrate up` across majors onto the
unified 17 container hj-hive-agent-unified."""
import hashlib
import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg

from conftest import HM, ROOT, run
from splitstack import SplitStack, ensure_images

PREFIX = "hj-"
API_PORT = 30886
PG_PORT = 30532
UNIFIED = "hj-hive-agent-unified"
IMAGE = "localhost/hive-unified:17"
READER_PASSWORD = "reader-pw-\u00e9-'quote"

EXIT_ROLLED_BACK = 35
EXIT_PREFLIGHT = 37


def docker(*args, check=False, **kw):
    return run(["docker", *args], check=check, **kw)


def ensure_images_15():
    ensure_images(pg=(15,), api=True)
    run([ROOT / "docker" / "build-image.sh"], check=True, timeout=1800)


def extras(s):
    """A second database with its own owner role and data, and a read-only role with a
    password (SCRAM) that must keep working after the move."""
    with s.connect() as c:
        c.execute("CREATE ROLE hj_owner LOGIN PASSWORD 'owner-pw'")
        c.execute(f"CREATE ROLE hj_reader LOGIN PASSWORD '{READER_PASSWORD.replace(chr(39), chr(39) * 2)}'")
        c.execute("CREATE DATABASE hj_extra OWNER hj_owner")
        c.execute("GRANT USAGE ON SCHEMA agno TO hj_reader")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA agno TO hj_reader")
    dsn = s.dsn().replace("dbname=hive_agent", "dbname=hj_extra")
    with psycopg.connect(dsn, password=s.password(), autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")
        c.execute("CREATE SCHEMA notes AUTHORIZATION hj_owner")
        c.execute("CREATE TABLE notes.items (id int PRIMARY KEY, body text, at timestamptz, "
                  "price numeric(12,2), f float8, tags text[], doc jsonb, emb vector(3))")
        c.execute("INSERT INTO notes.items SELECT g, 'note ' || g, "
                  "'2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', g * 1.25, "
                  "g / 3.0, ARRAY['a', 'b' || g], jsonb_build_object('k', g, 'n', 'x'), "
                  "ARRAY[g, g + 1, g + 2]::real[]::vector FROM generate_series(1, 500) g")
        c.execute("CREATE INDEX ON notes.items USING hnsw (emb vector_l2_ops)")
        c.execute("ALTER TABLE notes.items OWNER TO hj_owner")


def new_stack(tmp, name="hj-stack", fill="2MB"):
    """A created, started and filled PostgreSQL 15 agent split stack with extras."""
    ensure_images_15()
    s = SplitStack(Path(tmp) / name, profile="agent", pg=15, name_prefix=PREFIX,
                   ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.create()
    s.up()
    s.fill(fill, seed=7)
    extras(s)
    return s


def up(s, *args, env=None, timeout=900):
    e = dict(os.environ)
    e.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
    for k in ("HIVE_MIGRATE_FAULT", "HIVE_MIGRATE_FAIL"):
        e.pop(k, None)
    e.update(env or {})
    return run([HM, "up", "--stack", s.path, "--profile", "agent", "--name-prefix", PREFIX,
                "--yes", "--health-timeout", "180", *args], env=e, timeout=timeout)


def journal(s):
    p = s.path / ".hive-migrate" / "journal-agent.json"
    return json.loads(p.read_text()) if p.exists() else None


def remove_unified():
    docker("rm", "-f", UNIFIED)
    for w in ("dump", "restore"):
        docker("rm", "-f", f"{UNIFIED}-major-{w}")


def old_kept(s):
    return Path(str(s.mount_dir()) + ".pg15-old")


def new_building(s):
    return Path(str(s.mount_dir()) + ".pg17-new")


def tree(path):
    """{relative path: (type, mode, uid, gid, size, mtime s, sha256 or link target)} of
    everything below path (path itself included as "."): equal trees = byte for byte the
    same files with the same metadata."""
    out = {}
    root = Path(path)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None] + dirnames + filenames:
            p = Path(dirpath) if name is None else Path(dirpath) / name
            if name is None and p != root:
                continue
            st = os.lstat(p)
            rel = str(p.relative_to(root)) if p != root else "."
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                extra = h.hexdigest()
            else:
                extra = ""
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        size, int(st.st_mtime), extra)
    return out


def snapshot_tree(archive):
    """The tree of the snapshot's data/ member, extracted as root with owners kept."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["tar", "--zstd", "-xpf", archive, "--numeric-owner", "-C", d], check=True,
                       capture_output=True)  # GNU tar warns about the pax hdrcharset keyword
        return tree(Path(d) / "data")


def all_fingerprint(s, port=PG_PORT):
    """Rows and an md5 over sorted row digests of every table of both databases."""
    out = {}
    for db in ("hive_agent", "hj_extra", "hj_loc"):
        dsn = f"host=127.0.0.1 port={port} user=agent dbname={db} connect_timeout=5"
        try:
            c = psycopg.connect(dsn, password=s.password(), autocommit=True)
        except psycopg.OperationalError as exc:
            if "does not exist" in str(exc):
                continue
            raise
        with c:
            c.execute("SET TimeZone = 'UTC'")
            tables = c.execute(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
                "n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").fetchall()
            for (t,) in tables:
                out[f"{db}:{t}"] = tuple(c.execute(
                    f"SELECT count(*), coalesce(md5(string_agg(x.h, '' ORDER BY x.h)), '') "
                    f"FROM (SELECT md5(t::text) AS h FROM {t} t) x").fetchone())
    return out


def assert_split_back(s, before):
    """The split stack runs on PostgreSQL 15 with the same data; nothing left beside."""
    assert s.api_healthy()
    assert s.pg_version() == "15"
    assert all_fingerprint(s) == before
    assert not old_kept(s).exists()
    assert not new_building(s).exists()
    j = journal(s)
    assert j["status"] == "rolled-back", j
    assert j["cross_major"] == 1
