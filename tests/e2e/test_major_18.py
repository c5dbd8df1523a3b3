"""hive-migrate up across PostgreSQL majors onto the unified 18 image, end to end on real
containers: a PostgreSQL 17 split stack (trixie, pgvector 0.8.0) with hive data (HNSW index,
jsonb, several schemas), a second database and two more roles, moved onto
localhost/hive-unified:18 (forky, pgvector newer than the old one: the extension is updated).
The target major comes from the image. Then the rollback after the completed migration.
Names "hk-", ports 31886 (API) / 31532 (PostgreSQL): may run beside the other e2e files."""
import json
import os
from pathlib import Path

import psycopg
import pytest

from conftest import HM, ROOT, run
from major_helpers import READER_PASSWORD, extras, snapshot_tree, tree
from splitstack import SplitStack, ensure_images

PREFIX = "hk-"
API_PORT = 31886
PG_PORT = 31532
UNIFIED = "hk-hive-agent-unified"
IMAGE = "localhost/hive-unified:18"
EXIT_PREFLIGHT = 37
EXIT_WRITES_WOULD_BE_LOST = 39


def env():
    e = dict(os.environ)
    e.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
    for k in ("HIVE_MIGRATE_FAULT", "HIVE_MIGRATE_FAIL"):
        e.pop(k, None)
    return e


def up(s, *args):
    return run([HM, "up", "--stack", s.path, "--profile", "agent", "--name-prefix", PREFIX,
                "--image", IMAGE, "--yes", "--health-timeout", "180", *args], env=env(), timeout=900)


def rollback(s, *args):
    return run([HM, "rollback", "--stack", s.path, "--profile", "agent", "--yes",
                "--health-timeout", "180", *args], env=env(), timeout=900)


def journal(s):
    p = s.path / ".hive-migrate" / "journal-agent.json"
    return json.loads(p.read_text()) if p.exists() else None


def fingerprint(s):
    """Rows and an md5 over sorted row digests of every table of both databases."""
    out = {}
    for db in ("hive_agent", "hj_extra"):
        dsn = f"host=127.0.0.1 port={PG_PORT} user=agent dbname={db} connect_timeout=5"
        with psycopg.connect(dsn, password=s.password(), autocommit=True) as c:
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


def kept(s, suffix):
    return Path(str(s.mount_dir()) + suffix)


def pgdata_of(d):
    return d / "pgdata" if (d / "pgdata").is_dir() else d


@pytest.fixture(scope="module")
def image18(engine):
    """The unified image for 18, built here: on a new machine no other test has built it."""
    run([ROOT / "docker" / "build-image.sh", "--major", "18"], check=True, timeout=1800)
    return IMAGE


@pytest.fixture(scope="module")
def stack(image18, tmp_path_factory):
    ensure_images(pg=(17,), api=True)
    s = SplitStack(tmp_path_factory.mktemp("hk-major") / "hk-stack", profile="agent", pg=17,
                   name_prefix=PREFIX, ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.create()
    s.up()
    s.fill("2MB", seed=11)
    extras(s)
    yield s
    run(["docker", "rm", "-f", UNIFIED, f"{UNIFIED}-major-dump", f"{UNIFIED}-major-restore"])
    s.down()


def test_image_18_is_postgres_18_from_forky(image18):
    out = run(["docker", "run", "--rm", "--entrypoint", "sh", image18, "-c",
               "postgres --version; . /etc/os-release; echo $VERSION_CODENAME"], check=True).stdout
    assert "(PostgreSQL) 18." in out, out
    assert "forky" in out, out


def test_check_plans_17_to_18(stack):
    res = run([HM, "check", "--data-dir", stack.data_dir(), "--image", IMAGE, "--json"], env=env())
    rep = json.loads(res.stdout)
    codes = {p["code"]: p for p in rep["problems"]}
    assert "major-upgrade" in codes, rep
    assert rep["verdict"] in ("warnings", "compatible"), rep


def test_up_17_to_18(stack):
    before = fingerprint(stack)
    assert before["hive_agent:agno.knowledge_base"][0] > 0
    assert before["hj_extra:notes.items"][0] == 500
    owner = stack.data_dir().stat().st_uid
    res = up(stack, "--json")
    assert res.returncode == 0, res.stderr[-6000:]
    summ = json.loads(res.stdout)["profiles"][0]
    assert summ["result"] == "migrated" and summ["cross_major"] is True and summ["old_major"] == 17
    j = journal(stack)
    assert j["status"] == "done" and j["cross_major"] == 1
    assert stack.pg_version() == "18"
    old = kept(stack, ".pg17-old")
    assert (pgdata_of(old) / "PG_VERSION").read_text().strip() == "17"
    assert tree(old) == snapshot_tree(j["archive"])          # untouched, byte for byte
    assert pgdata_of(old).stat().st_uid == owner
    assert not kept(stack, ".pg18-new").exists()
    assert stack.api_healthy()
    assert fingerprint(stack) == before
    with stack.connect() as c:
        assert c.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        have, default = c.execute(
            "SELECT e.extversion, a.default_version FROM pg_extension e JOIN pg_available_extensions a "
            "ON a.name = e.extname WHERE e.extname = 'vector'").fetchone()
        assert have == default, (have, default)        # updated to the target's pgvector
        near = c.execute("SELECT count(*) FROM (SELECT id FROM agno.knowledge_base ORDER BY "
                         "embedding <=> (SELECT embedding FROM agno.knowledge_base LIMIT 1) "
                         "LIMIT 5) x").fetchone()[0]
        assert near == 5
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE indexdef ILIKE '%USING hnsw%'").fetchone()[0] >= 1
    dsn = f"host=127.0.0.1 port={PG_PORT} dbname=hive_agent connect_timeout=5"
    with psycopg.connect(dsn, user="hj_reader", password=READER_PASSWORD) as c:
        assert c.execute("SELECT count(*) FROM agno.knowledge_base").fetchone()[0] > 0
    with psycopg.connect(dsn.replace("hive_agent", "hj_extra"), user="hj_owner", password="owner-pw") as c:
        assert c.execute("SELECT count(*) FROM notes.items WHERE emb <-> '[1,2,3]' < 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, user="hj_reader", password="wrong").close()


def test_rollback_after_17_to_18(stack):
    migrated = fingerprint(stack)
    with stack.connect() as c:
        c.execute("CREATE TABLE public.hk_after (id int PRIMARY KEY)")
        c.execute("INSERT INTO public.hk_after SELECT generate_series(1, 3)")
    res = rollback(stack)
    assert res.returncode == EXIT_WRITES_WOULD_BE_LOST, res.stderr[-4000:]
    assert "hk_after" in res.stderr and "--discard-new-writes" in res.stderr
    assert stack.pg_version() == "18" and stack.api_healthy()
    res = rollback(stack, "--discard-new-writes")
    assert res.returncode == 0, res.stderr[-6000:]
    assert stack.pg_version() == "17" and stack.api_healthy()
    assert fingerprint(stack) == migrated
    assert journal(stack)["status"] == "rolled-back"
    new = pgdata_of(kept(stack, ".pg18-new"))
    assert (new / "PG_VERSION").read_text().strip() == "18"
    state = int.from_bytes((new / "global" / "pg_control").read_bytes()[16:20], "little")
    assert state == 1, state                                  # shut down cleanly, kept whole
