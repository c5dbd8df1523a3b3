"""Rollback that keeps what was written (issue 11), against real stacks: after `up`, rows are
inserted, updated and deleted on the unified container (through PostgreSQL and the API, with
embeddings), tables, indexes and roles created, and `rollback` carries the live directory back
to the split stack with all of it; `rollback --to-snapshot` says what it leaves out and needs
--yes without a terminal; a killed unified container is recovered; a rollback killed at any of
its new steps completes when run again; owners end exactly as they were (an entry that was
already owned by the unified container's 1000:1000 before `up` keeps that owner); a unified
container whose API never starts (PostgreSQL runs) is rolled back with every row written.

Own names and ports (beside the other e2e files): prefix "hr-", API 19886, PostgreSQL 19532,
unified container hr-hive-agent-unified."""
import json
import os
import shutil
import urllib.request
from pathlib import Path

import psycopg
import pytest

from conftest import HM, ROOT, run, wait_until
from migrate_helpers import BROKEN_IMAGE, describe, ensure_broken_image, ensure_unified_image, hm_env, journal
from splitstack import SplitStack, ensure_images, read_pg_state

PREFIX = "hr-"
API_PORT = 19886
PG_PORT = 19532
UNIFIED = "hr-hive-agent-unified"
TEMPLATES = ROOT / "docker" / "templates"
EXIT_NEEDS_CONFIRMATION = 38


def docker(*args, check=False, **kw):
    return run(["docker", *args], check=check, **kw)


def container_state(name):
    r = docker("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else None


def remove_unified():
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


def up(s, *extra, fault=None):
    return run([HM, "up", "--stack", s.path, "--profile", "agent", "--yes", "--json",
                "--container-name", UNIFIED, "--templates", TEMPLATES, "--health-timeout", "90",
                *extra], env=hm_env(fault), timeout=900)


def rollback(s, *extra, fault=None, yes=True):
    return run([HM, "rollback", "--stack", s.path, "--profile", "agent", "--json",
                "--health-timeout", "90", *(["--yes"] if yes else []), *extra],
               env=hm_env(fault), timeout=900)


def summary(res):
    return json.loads(res.stdout)["profiles"][0]


def http(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{API_PORT}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def api_healthy():
    try:
        status, body = http("GET", "/api/v1/health")
        return status == 200 and body.get("status") == "healthy"
    except Exception:
        return False


def owners(top):
    """{relative path: (uid, gid)} of every entry below top (top itself is ".")."""
    out = {".": (os.lstat(top).st_uid, os.lstat(top).st_gid)}
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out[os.path.relpath(p, top)] = (st.st_uid, st.st_gid)
    return out


def full_fingerprint(s):
    """Every ordinary table of the stack's database: {schema.table: (rows, md5 of sorted row md5s)}."""
    out = {}
    with s.connect() as conn:
        tables = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')").fetchall()
        for (t,) in tables:
            q = ".".join(psycopg.sql.Identifier(x).as_string(conn) for x in t.split(".", 1))
            out[t] = tuple(conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(x.h, '' ORDER BY x.h)), '') "
                f"FROM (SELECT md5(t::text) AS h FROM {q} t) x").fetchone())
    return out


def write_rows(s, tag):
    """Inserts, updates and deletes through PostgreSQL and the API (embeddings included)."""
    ids = []
    for i in range(3):
        status, body = http("POST", "/api/v1/knowledge",
                            {"name": f"{tag}-{i}", "content": f"written on the unified container {tag} {i}"})
        assert status == 200
        ids.append(body["id"])
    status, body = http("POST", "/api/v1/knowledge",
                        {"name": f"{tag}-vec", "content": "explicit embedding",
                         "embedding": [((i * 7) % 13) / 13.0 for i in range(384)]})
    assert status == 200
    ids.append(body["id"])
    with s.connect() as conn:
        conn.execute("INSERT INTO agno.knowledge_base (name, content, embedding) "
                     "SELECT %s, 'sql insert', embedding FROM agno.knowledge_base WHERE embedding IS NOT NULL LIMIT 2",
                     (f"{tag}-sql",))
        conn.execute("UPDATE agno.knowledge_base SET content = content || ' (updated)', "
                     "embedding = (SELECT embedding FROM agno.knowledge_base WHERE id = %s) "
                     "WHERE id IN (SELECT id FROM agno.knowledge_base ORDER BY id LIMIT 5)", (ids[-1],))
        conn.execute("DELETE FROM agno.knowledge_base WHERE id IN "
                     "(SELECT id FROM agno.knowledge_base WHERE name IS DISTINCT FROM %s ORDER BY id DESC LIMIT 1 OFFSET 7)",
                     (tag,))
        conn.execute("UPDATE hive.agent_metrics SET value = value + 1 WHERE ctid IN "
                     "(SELECT ctid FROM hive.agent_metrics LIMIT 10)")
        conn.execute("DELETE FROM agno.memories WHERE ctid IN (SELECT ctid FROM agno.memories LIMIT 2)")
        conn.execute("INSERT INTO agno.sessions (session_id, agent_id, user_id, memory) "
                     "VALUES (%s, 'a', 'u', '{}'::jsonb)", (f"{tag}-session",))
    return ids


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(Path(tmp_path_factory.mktemp("hr-live")) / "hr-stack", profile="agent",
                   name_prefix=PREFIX, ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    remove_unified()
    s.create()
    s.up()
    s.fill("2MB", seed=11)
    s.owners_at_start = owners(s.mount_dir())
    yield s
    remove_unified()
    s.down()


@pytest.fixture
def migrated(stack):
    """The stack migrated onto the unified container; afterwards back on the split stack."""
    s = stack
    assert s.api_healthy()
    s.pre = full_fingerprint(s)
    s.pre_owners = owners(s.mount_dir())
    res = up(s)
    assert res.returncode == 0, describe(res)
    s.last_up = summary(res)
    wait_until(api_healthy, 60, what="unified API healthy")
    yield s
    j = journal(s)
    if j and j["status"] != "rolled-back":
        rollback(s)
    remove_unified()
    if not s.api_healthy():
        s.start()
    for d in s.mount_dir().parent.glob(s.mount_dir().name + ".displaced-*"):
        shutil.rmtree(d)


def assert_owners_as_before(s, before):
    """Entries that existed keep their owner; new ones get the owner of pgdata before."""
    now = owners(s.mount_dir())
    pg_rel = os.path.relpath(s.data_dir(), s.mount_dir())
    split_owner = before[pg_rel]
    for rel, own in now.items():
        want = before.get(rel, split_owner)
        assert own == want, f"{rel}: owner {own}, want {want}"


def assert_live_back(s, live, res):
    assert res.returncode == 0, describe(res)
    out = summary(res)
    assert out["mode"] == "live" and out["result"] == "rolled-back"
    assert s.state(role="postgres") == "running" and s.state(role="api") == "running"
    assert container_state(UNIFIED) is None
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert full_fingerprint(s) == live
    j = journal(s)
    assert j["status"] == "rolled-back" and j["rollback_mode"] == "live" and j["live_step"] == "done"
    return out


def test_live_rollback_keeps_every_write(migrated):
    s = migrated
    ids = write_rows(s, "t1")
    live = full_fingerprint(s)
    assert live != s.pre
    # the plan of a dry run changes nothing
    dry = rollback(s, "--dry-run")
    assert dry.returncode == 0, describe(dry)
    assert "live rollback: every write made on" in dry.stdout and "safety snapshot" in dry.stdout
    assert container_state(UNIFIED) == "running" and journal(s)["status"] == "done"
    res = rollback(s)
    out = assert_live_back(s, live, res)
    assert out["fingerprint_match"] is True and out["recovered"] is False
    assert out["unified_stop_state"] == "shut down"
    assert "every table matches the unified server's fingerprint" in res.stderr
    # the downtime by step (benchmarks read it): every step of the downtime ran and was
    # timed, and they add up to the downtime (the unified fingerprint precedes it)
    st = out["step_seconds"]
    downtime_steps = ("stop", "safety_snapshot", "owners", "settings", "start", "health", "verify")
    assert set(st) == {"fingerprint", *downtime_steps}
    assert all(st[k] > 0 for k in ("fingerprint", "stop", "safety_snapshot", "start", "health", "verify"))
    assert abs(sum(st[k] for k in downtime_steps) - out["downtime_seconds"]) < 0.5
    # the safety snapshot exists, verified, and the rollback said where
    assert out["safety_archive"] and os.path.exists(out["safety_archive"])
    assert out["safety_archive"] in res.stderr
    assert "safety snapshot verified" in res.stderr
    assert oct(os.stat(out["safety_archive"]).st_mode & 0o777) == "0o600"
    assert not out["displaced_dir"]          # nothing displaced: the same directory serves
    # the split API serves the rows written through the unified API
    for i in ids:
        status, body = http("GET", f"/api/v1/knowledge/{i}")
        assert status == 200 and body["id"] == i
    status, body = http("POST", "/api/v1/knowledge/search", {"query": "written on the unified container t1", "k": 3})
    assert status == 200
    # owners exactly as before the migration (999 in this fixture), new files the split's owner
    assert_owners_as_before(s, s.pre_owners)
    assert out["owners_new"] > 0                 # the unified container created files

    # up again after such a rollback works, and so does a second rollback
    res = up(s)
    assert res.returncode == 0, describe(res)
    wait_until(api_healthy, 60, what="unified API healthy again")
    write_rows(s, "t1b")
    live2 = full_fingerprint(s)
    res = rollback(s, "--no-safety-snapshot")
    out = assert_live_back(s, live2, res)
    assert out["safety_archive"] == ""
    assert "no safety snapshot" in res.stderr
    assert_owners_as_before(s, s.pre_owners)


def test_live_rollback_new_table_index_role_and_settings(migrated):
    s = migrated
    with s.connect() as conn:
        conn.execute("CREATE TABLE public.hr_new (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO public.hr_new SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        conn.execute("CREATE INDEX hr_new_v ON public.hr_new (v)")
        conn.execute("CREATE INDEX hr_kb_name ON agno.knowledge_base (name)")
    with s.connect() as conn:
        is_super = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if is_super:
            conn.execute("CREATE ROLE hr_reader LOGIN PASSWORD 'hr-reader-pw'")
        # a user's own change of the server's settings, made on the unified container: kept
        if conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            conn.execute("ALTER SYSTEM SET work_mem = '7MB'")
    # a change the unified container itself made (as if at its start): put back
    hba = s.data_dir() / "pg_hba.conf"
    after_copy = s.path / ".hive-migrate" / "settings-agent" / "after" / "pg_hba.conf"
    assert after_copy.exists(), "up keeps a copy of the settings files"
    original_hba = hba.read_text()
    changed = original_hba + "host all all 203.0.113.0/24 trust\n"
    hba.write_text(changed)
    after_copy.write_text(changed)
    write_rows(s, "t2")
    live = full_fingerprint(s)
    assert "public.hr_new" in live
    res = rollback(s)
    out = assert_live_back(s, live, res)
    assert out["fingerprint_match"] is True
    with s.connect() as conn:
        idx = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'hr_%'")}
        assert idx == {"hr_new_v", "hr_new_pkey", "hr_kb_name"}
        assert conn.execute("SELECT count(*) FROM public.hr_new").fetchone()[0] == 500
        if is_super:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'hr_reader'").fetchone()[0] == 1
            assert conn.execute("SHOW work_mem").fetchone()[0] == "7MB"
    if is_super:
        with psycopg.connect(f"host=127.0.0.1 port={PG_PORT} user=hr_reader dbname={s.dbname()}",
                             password="hr-reader-pw") as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    # the unified container's change to pg_hba.conf is gone, the file is as before
    assert hba.read_text() == original_hba
    assert out["settings_rewritten"] == 1
    assert "pg_hba.conf: put back 1 setting" in res.stderr
    assert_owners_as_before(s, s.pre_owners)


def test_to_snapshot_reports_and_needs_yes(migrated):
    s = migrated
    write_rows(s, "t3")
    live = full_fingerprint(s)
    # no terminal, no --yes: refused, nothing changed, the changed tables named
    res = rollback(s, "--to-snapshot", yes=False)
    assert res.returncode == EXIT_NEEDS_CONFIRMATION, describe(res)
    assert "agno.knowledge_base" in res.stderr and "agno.sessions" in res.stderr
    assert "rows before" in res.stderr
    assert "nothing was changed" in res.stderr
    assert container_state(UNIFIED) == "running" and api_healthy()
    assert journal(s)["status"] == "done"
    assert full_fingerprint(s) == live
    # the plan of a dry run
    dry = rollback(s, "--to-snapshot", "--dry-run")
    assert dry.returncode == 0 and "left out" in dry.stdout
    # confirmed: the pre-migration data
    res = rollback(s, "--to-snapshot")
    assert res.returncode == 0, describe(res)
    out = summary(res)
    assert out["mode"] == "snapshot"
    changed = {(e["table"], e["change"]) for e in out["left_out"]}
    assert ("agno.knowledge_base", "changed") in changed
    assert out["safety_archive"] and os.path.exists(out["safety_archive"])
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert full_fingerprint(s) == s.pre
    assert out["displaced_dir"] and os.path.isdir(out["displaced_dir"])


def test_cross_major_needs_discard_new_writes(migrated):
    """A journal of a migration across majors (as the cross-major up records it): the live
    rollback is refused with what would be lost; --discard-new-writes restores the snapshot."""
    s = migrated
    write_rows(s, "t5")
    live = full_fingerprint(s)
    jp = s.path / ".hive-migrate" / "journal-agent.json"
    j = json.loads(jp.read_text())
    j["cross_major"] = 1
    jp.write_text(json.dumps(j))
    res = rollback(s)
    assert res.returncode == 39, describe(res)
    assert "across PostgreSQL majors" in res.stderr and "--discard-new-writes" in res.stderr
    assert "agno.knowledge_base" in res.stderr          # what would be lost
    assert container_state(UNIFIED) == "running" and full_fingerprint(s) == live
    assert journal(s)["status"] == "done"
    res = rollback(s, "--discard-new-writes", yes=False)
    assert res.returncode == EXIT_NEEDS_CONFIRMATION, describe(res)
    res = rollback(s, "--discard-new-writes")
    assert res.returncode == 0, describe(res)
    assert summary(res)["mode"] == "snapshot"
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert full_fingerprint(s) == s.pre


def test_killed_unified_container_is_recovered(migrated):
    s = migrated
    write_rows(s, "t4")
    committed = full_fingerprint(s)
    # SIGKILL the whole container: PostgreSQL is left "in production"; it is not restarted
    docker("kill", "-s", "KILL", UNIFIED, check=True)
    docker("stop", "-t", "0", UNIFIED)
    assert container_state(UNIFIED) != "running"
    assert read_pg_state(s.data_dir()) == "in production"
    res = rollback(s)
    assert res.returncode == 0, describe(res)
    out = summary(res)
    assert out["mode"] == "live" and out["recovered"] is True and out["fingerprint_match"] is False
    assert out["unified_stop_state"] == "in production"
    assert "recovered" in res.stderr and "does not answer" in res.stderr
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert full_fingerprint(s) == committed       # nothing committed is lost
    assert_owners_as_before(s, s.pre_owners)


def test_killed_to_snapshot_after_safety_completes(migrated):
    s = migrated
    res = rollback(s, "--to-snapshot", fault="rollback:snapshot:after-safety")
    assert res.returncode == -9, describe(res)
    j = journal(s)
    assert j["status"] == "rolling-back" and j["rollback_mode"] == "snapshot" and j["safety_done"] == 1
    again = rollback(s)          # the journal knows it is a snapshot rollback
    assert again.returncode == 0, describe(again)
    assert summary(again)["mode"] == "snapshot"
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert full_fingerprint(s) == s.pre


def container_log(name):
    r = docker("logs", name)
    return r.stdout + r.stderr


def pg_answers(s):
    with s.connect() as conn:
        return conn.execute("SELECT 1").fetchone()[0] == 1


def replace_unified_with(image, data_dir):
    """Replace the unified container `up` started by one of image, with the settings of the
    real one as docker inspect shows them: user, HIVE_* environment, published ports (same
    host addresses), the mount of data_dir (its only one) and the shm size."""
    r = docker("inspect", UNIFIED, check=True)
    info = json.loads(r.stdout)[0]
    cfg, host = info["Config"], info["HostConfig"]
    args = ["run", "-d", "--name", UNIFIED, "--user", cfg["User"]]
    if host.get("ShmSize"):
        args += ["--shm-size", str(host["ShmSize"])]
    args += [x for e in cfg["Env"] if e.startswith("HIVE_") for x in ("-e", e)]
    ports = [(b.get("HostIp") or "", b["HostPort"], cport)
             for cport, binds in (host.get("PortBindings") or {}).items() for b in binds or []]
    assert {p[1] for p in ports} == {str(API_PORT), str(PG_PORT)}, ports
    args += [x for ip, hp, cp in ports for x in ("-p", f"{ip + ':' if ip else ''}{hp}:{cp}")]
    mounts = [m for m in info["Mounts"] if m["Type"] == "bind"]
    assert [os.path.realpath(m["Source"]) for m in mounts] == [os.path.realpath(data_dir)], mounts
    args += [x for m in mounts for x in ("-v", f"{m['Source']}:{m['Destination']}")]
    remove_unified()
    assert container_state(UNIFIED) is None
    docker(*args, image, check=True)


def test_live_rollback_from_broken_api_container(migrated):
    """After a completed up the unified container is replaced by one of the broken-API image
    (PostgreSQL runs, the API never does) on the same directory and ports; rows written
    through PostgreSQL there all come back on the split stack, which is healthy."""
    s = migrated
    ensure_broken_image()
    mount = s.mount_dir()
    replace_unified_with(BROKEN_IMAGE, mount)
    r = docker("inspect", "-f", "{{.Config.Image}}", UNIFIED, check=True)
    assert "hive-unified:broken" in r.stdout
    wait_until(lambda: pg_answers(s), 120, what="PostgreSQL of the broken-API container")
    with s.connect() as conn:
        before_kb = conn.execute("SELECT count(*) FROM agno.knowledge_base").fetchone()[0]
        conn.execute("INSERT INTO agno.knowledge_base (name, content, embedding) "
                     "SELECT 'tb-' || g, 'written with the API down ' || g, "
                     "(SELECT embedding FROM agno.knowledge_base WHERE embedding IS NOT NULL LIMIT 1) "
                     "FROM generate_series(1, 200) g")
        conn.execute("CREATE TABLE public.tb_broken (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO public.tb_broken SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        conn.execute("UPDATE hive.agent_metrics SET value = value + 2 WHERE ctid IN "
                     "(SELECT ctid FROM hive.agent_metrics LIMIT 10)")
        conn.execute("INSERT INTO agno.sessions (session_id, agent_id, user_id, memory) "
                     "VALUES ('tb-session', 'a', 'u', '{}'::jsonb)")
    live = full_fingerprint(s)
    assert live != s.pre
    assert live["public.tb_broken"][0] == 1000
    assert live["agno.knowledge_base"][0] == before_kb + 200
    # the API of this container exits at import and never answers: the rollback cannot lean on it
    wait_until(lambda: "broken on purpose" in container_log(UNIFIED), 60,
               what="the broken API's exit in the container's log")
    assert container_state(UNIFIED) == "running" and not api_healthy()
    res = rollback(s)
    out = assert_live_back(s, live, res)       # completed, split healthy, every row as written
    assert out["fingerprint_match"] is True
    assert "every table matches the unified server's fingerprint" in res.stderr
    assert s.mount_dir() == mount and not out["displaced_dir"]
    with s.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.tb_broken").fetchone()[0] == 1000
        assert conn.execute("SELECT count(*) FROM agno.knowledge_base WHERE name LIKE 'tb-%'").fetchone()[0] == 200
    assert_owners_as_before(s, s.pre_owners)


def test_entry_owned_by_unified_owner_before_up_keeps_it(stack, request):
    """A file in the data directory that was 1000:1000 (the unified container's owner) before
    `up`, in a stack owned by another uid, is still 1000:1000 after up and a live rollback;
    files the unified container created get the split stack's owner. The file lies beside
    pgdata, not in it: the split image's entrypoint gives every entry in PGDATA its own owner
    at each start (as the official image does), whatever hive-migrate left there."""
    s = stack
    split_uid = os.lstat(s.data_dir()).st_uid
    assert split_uid != 1000, "the fixture's split stack must run as another uid than 1000"
    marker = s.mount_dir() / "hm_keep_marker"
    rel = os.path.relpath(marker, s.mount_dir())
    marker.write_text("owned by 1000:1000 before the migration\n")
    os.lchown(marker, 1000, 1000)
    try:
        s = request.getfixturevalue("migrated")      # up, with the marker in place
        assert s.pre_owners[rel] == (1000, 1000)
        same = s.path / ".hive-migrate" / "owners-agent.txt.same"
        assert oct(os.lstat(same).st_mode & 0o777) == "0o600"
        assert any(line.split(" ", 1)[1] == rel for line in same.read_text().splitlines())
        assert f" {rel}\n" not in (s.path / ".hive-migrate" / "owners-agent.txt").read_text()
        assert (os.lstat(marker).st_uid, os.lstat(marker).st_gid) == (1000, 1000)
        with s.connect() as conn:
            conn.execute("CREATE TABLE public.tb_marker AS SELECT g AS id FROM generate_series(1, 300) g")
        live = full_fingerprint(s)
        res = rollback(s)
        out = assert_live_back(s, live, res)
        assert out["owners_new"] > 0                 # the unified container created files
        assert (os.lstat(marker).st_uid, os.lstat(marker).st_gid) == (1000, 1000)
        assert_owners_as_before(s, s.pre_owners)      # new files: the split stack's owner
        assert s.pre_owners[os.path.relpath(s.data_dir(), s.mount_dir())][0] == split_uid
    finally:
        marker.unlink(missing_ok=True)


LIVE_FAULTS = ["rollback:live:after-fingerprint", "rollback:live:after-unified-down",
               "rollback:during:safety-verify", "rollback:live:after-safety-snapshot",
               "rollback:live:after-owners", "rollback:live:after-settings",
               "rollback:live:after-split-start", "rollback:live:after-verify"]


@pytest.mark.parametrize("fault", LIVE_FAULTS)
def test_killed_live_rollback_completes_on_rerun(migrated, fault):
    s = migrated
    write_rows(s, fault.rsplit(":", 1)[-1])
    live = full_fingerprint(s)
    res = rollback(s, fault=fault)
    assert res.returncode == -9, describe(res)
    assert f"SIGKILL at {fault}" in res.stderr
    j = journal(s)
    assert j["status"] == "rolling-back" and j["rollback_mode"] == "live"
    # up refuses to go on while a rollback is unfinished
    blocked = up(s)
    assert blocked.returncode == 34, describe(blocked)
    again = rollback(s)
    out = assert_live_back(s, live, again)
    assert out["fingerprint_match"] is True
    assert_owners_as_before(s, s.pre_owners)
