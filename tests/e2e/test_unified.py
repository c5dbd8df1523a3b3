"""End-to-end tests of the unified container (docker/): PostgreSQL 17 + pgvector + the hive
API under supervisord in one container, on the real engine (podman via the docker CLI and
compose v2). Containers are named hd-*, host ports 21886/21887 (API) and 21532/21533 (PG), data
in tmp_path; everything is removed in fixture teardown."""
import os
import subprocess
import time

import pytest

from conftest import ROOT, run, wait_until
from unified_helpers import (BACKUP_PASSWORD, DOCKER, IMAGE, PASSWORD, build_image, chown_r,
                             compose, dexec, docker, healthy, http, logs, make_data_dir,
                             pg_state, psql, rm_containers, system_identifier, wait_healthy)

AGENT, GENIE = "hd-agent-unified", "hd-genie-unified"
AGENT_PORT, GENIE_PORT = 21886, 21887
AGENT_PG_PORT, GENIE_PG_PORT = 21532, 21533
COMPOSE = {p: DOCKER / p / "docker-compose.unified.yml" for p in ("agent", "genie")}
TEMPLATES = {p: DOCKER / "templates" / f"{p}.yml" for p in ("agent", "genie")}
CRASH_MARKERS = ("database system was not properly shut down", "redo starts")


@pytest.fixture(scope="module")
def image(engine):
    """The unified image, built (or found up to date) by docker/build-image.sh."""
    build_image()
    return IMAGE


def profile_env(name, port, data, **extra):
    """Variables for docker/<profile>/docker-compose.unified.yml."""
    env = {"HIVE_CONTAINER_NAME": name, "HIVE_API_PORT": str(port), "HIVE_DATA_DIR": str(data),
           "HIVE_DB_PASSWORD": PASSWORD, "HIVE_BACKUP_PASSWORD": BACKUP_PASSWORD,
           "HIVE_COMPOSE_PROJECT": name}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def pair(image, tmp_path_factory):
    """genie and agent side by side, each from its own docker/<profile> compose file."""
    base = tmp_path_factory.mktemp("unified-pair")
    envs = {
        "agent": profile_env(AGENT, AGENT_PORT, make_data_dir(base / "postgres-agent"),
                             HIVE_MONITOR_INTERVAL="1"),
        "genie": profile_env(GENIE, GENIE_PORT, make_data_dir(base / "postgres-genie")),
    }
    rm_containers(AGENT, GENIE)
    t0 = time.monotonic()
    for p, env in envs.items():
        compose(COMPOSE[p], env["HIVE_CONTAINER_NAME"], env, "up", "-d")
    yield {"envs": envs, "base": base, "t0": t0}
    for p, env in envs.items():
        compose(COMPOSE[p], env["HIVE_CONTAINER_NAME"], env, "down", "-t", "30", check=False)
    rm_containers(AGENT, GENIE)


def agent_pgdata(pair):
    return pair["base"] / "postgres-agent" / "pgdata"


def stop_clean(name, pgdata):
    """docker stop -t 30 and assert pg_control says "shut down"."""
    t0 = time.monotonic()
    docker("stop", "-t", "30", name, check=True)
    took = time.monotonic() - t0
    assert pg_state(pgdata) == "shut down", f"pg_control after docker stop: {pg_state(pgdata)}"
    return took


def test_image_has_no_compilers_and_runs_as_1000(image):
    r = docker("run", "--rm", "--entrypoint", "sh", image, "-c",
               "id -u; id -g; for c in gcc cc cc1 clang g++ make; do command -v $c; done; "
               "ls /usr/lib/gcc/x86_64-linux-gnu/*/cc1 2>/dev/null; true", check=True)
    lines = r.stdout.split()
    assert lines[:2] == ["1000", "1000"], r.stdout
    assert lines[2:] == [], f"compilers in the image: {lines[2:]}"
    # (podman's Docker-compatible API does not show an image's healthcheck: ask podman)
    hc = run(["podman", "image", "inspect", "--format", "{{json .Config.Healthcheck}}", image], check=True)
    assert "hive-healthcheck" in hc.stdout


def test_build_script_is_idempotent(image):
    t0 = time.monotonic()
    err = build_image()
    assert "up to date" in err, err
    assert time.monotonic() - t0 < 20


def test_side_by_side_both_healthy_without_depends_on(pair):
    for f in [*COMPOSE.values(), *TEMPLATES.values()]:
        code = "\n".join(l.split("#")[0] for l in f.read_text().splitlines())
        assert "depends_on" not in code, f"{f} uses depends_on"
    took_agent = wait_healthy(AGENT_PORT, AGENT)
    wait_healthy(GENIE_PORT, GENIE)
    assert time.monotonic() - pair["t0"] < 60, f"not healthy within 60 s ({took_agent:.1f})"
    status, body = http(AGENT_PORT, "GET", "/api/v1/health")
    assert status == 200 and body["database"] == "ok" and body["pgvector"].startswith("0.8")
    # the engine's healthcheck (the image's HEALTHCHECK, no curl) agrees
    for name in (AGENT, GENIE):
        wait_until(lambda: run(["podman", "healthcheck", "run", name]).returncode == 0, 30,
                   what=f"podman healthcheck run {name}")
    # roles and databases per profile; the app role is not superuser on a fresh directory;
    # the vector extension was created by the superuser; the backup role exists
    assert psql(AGENT, "agent", "hive_agent",
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'agent'") == "f"
    assert psql(GENIE, "hive", "hive_genie",
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'hive'") == "f"
    assert psql(AGENT, "agent", "hive_agent",
                "SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"
    assert psql(AGENT, "agent", "hive_agent",
                "SELECT rolreplication AND rolcanlogin FROM pg_roles WHERE rolname = 'hive_backup'") == "t"
    # PostgreSQL is not published by docker/<profile>/docker-compose.unified.yml
    ports = docker("port", AGENT, check=True).stdout
    assert "5432" not in ports, ports


def test_logs_are_prefixed_and_hold_no_password(pair):
    wait_healthy(AGENT_PORT, AGENT)
    for prefix in ("entrypoint | ", "postgres | ", "api | ", "health-monitor | "):
        wait_until(lambda: prefix in logs(AGENT), 20, what=f"'{prefix}' lines in docker logs")
    text = logs(AGENT)
    assert PASSWORD not in text and BACKUP_PASSWORD not in text
    inspect = docker("exec", AGENT, "cat", "/tmp/hive/health.json", check=True).stdout
    assert '"state":"healthy"' in inspect


def test_knowledge_store_and_search(pair):
    wait_healthy(AGENT_PORT, AGENT)
    ids = []
    for text in ("bees build hexagonal wax combs", "postgres stores rows in heap pages",
                 "the queen bee lays eggs in the comb"):
        status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": text, "name": "t"})
        assert status == 200, body
        ids.append(body["id"])
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge/search",
                        {"query": "bees build wax combs", "k": 2})
    assert status == 200, body
    assert body["results"][0]["id"] == ids[0]
    assert len(body["results"]) == 2
    vec = [0.0] * 384
    vec[7] = 1.0
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge",
                        {"content": "explicit vector", "embedding": vec, "meta_data": {"a": 1}})
    assert status == 200
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge/search", {"embedding": vec, "k": 1})
    assert body["results"][0]["content"] == "explicit vector"
    assert body["results"][0]["distance"] < 1e-6
    status, _ = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "x", "embedding": [1.0]})
    assert status == 422
    plan = psql(AGENT, "agent", "hive_agent",
                "SET enable_seqscan = off; EXPLAIN SELECT id FROM agno.knowledge_base "
                "ORDER BY embedding <=> (SELECT embedding FROM agno.knowledge_base LIMIT 1) LIMIT 3")
    assert "knowledge_base_embedding_hnsw" in plan


def test_stop_is_clean_and_restart_needs_no_recovery(pair):
    wait_healthy(AGENT_PORT, AGENT)
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "survives restart"})
    kid = body["id"]
    took = stop_clean(AGENT, agent_pgdata(pair))
    assert took < 30
    before = len(logs(AGENT))
    docker("start", AGENT, check=True)
    wait_healthy(AGENT_PORT, AGENT)
    new = logs(AGENT)[before:]
    for marker in CRASH_MARKERS:
        assert marker not in new, f"crash recovery after a clean stop: {marker!r}"
    assert "database system was shut down" in new
    status, body = http(AGENT_PORT, "GET", f"/api/v1/knowledge/{kid}")
    assert status == 200 and body["content"] == "survives restart"
    # docker restart (stop -t 30 + start) as well
    docker("restart", "-t", "30", AGENT, check=True)
    wait_healthy(AGENT_PORT, AGENT)
    assert http(AGENT_PORT, "GET", f"/api/v1/knowledge/{kid}")[0] == 200


def test_data_survives_recreation(pair):
    env = pair["envs"]["agent"]
    wait_healthy(AGENT_PORT, AGENT)
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "survives recreation"})
    kid = body["id"]
    compose(COMPOSE["agent"], AGENT, env, "down", "-t", "30")
    assert pg_state(agent_pgdata(pair)) == "shut down"
    assert docker("inspect", AGENT).returncode != 0, "container still exists after down"
    compose(COMPOSE["agent"], AGENT, env, "up", "-d")
    wait_healthy(AGENT_PORT, AGENT)
    status, body = http(AGENT_PORT, "GET", f"/api/v1/knowledge/{kid}")
    assert status == 200 and body["content"] == "survives recreation"
    assert "not re-initialised" in logs(AGENT)


def supervised_pid(name, program):
    """pid of a supervisord program (the wrapper, or uvicorn once exec'd)."""
    out = dexec(name, "supervisorctl", "-c", "/etc/hive/supervisord.conf", "pid", program).stdout
    return int(out.strip())


def test_kill_9_api_recovers(pair):
    wait_healthy(AGENT_PORT, AGENT)
    old = supervised_pid(AGENT, "api")
    dexec(AGENT, "kill", "-9", str(old))
    wait_until(lambda: supervised_pid(AGENT, "api") not in (0, old), 30, what="api restarted")
    wait_healthy(AGENT_PORT, AGENT, timeout=30)


def test_kill_9_postmaster_during_queries_recovers(pair):
    wait_healthy(AGENT_PORT, AGENT)
    pgdata = "/var/lib/postgresql/data/pgdata"
    old_pm = int(dexec(AGENT, "head", "-n1", f"{pgdata}/postmaster.pid").stdout)
    # a long sleeping query and a CPU-bound one (which never notices the postmaster's death,
    # so it is left as an orphan holding shared memory)
    clients = [subprocess.Popen(["docker", "exec", AGENT, "psql", "-X", "-h", "/var/run/postgresql",
                                 "-U", "agent", "-d", "hive_agent", "-c", sql],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for sql in ("SELECT pg_sleep(60)", "DO $$BEGIN LOOP PERFORM 1; END LOOP; END$$")]
    try:
        wait_until(lambda: psql(AGENT, "agent", "hive_agent",
                                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
                                "OR query LIKE 'DO $$BEGIN LOOP%'") == "2", 20, what="queries running")
        before = len(logs(AGENT))
        dexec(AGENT, "kill", "-9", str(old_pm))
        wait_healthy(AGENT_PORT, AGENT, timeout=60)
        new_pm = int(dexec(AGENT, "head", "-n1", f"{pgdata}/postmaster.pid").stdout)
        assert new_pm != old_pm
        new = logs(AGENT)[before:]
        assert "found orphaned postgres processes" in new, new[-3000:]
        assert "pre-existing shared memory block" not in new
        for c in clients:
            c.wait(timeout=30)
            assert c.returncode != 0, "the interrupted query should have failed"
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
    # data written before is still there and writes work again
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "after crash"})
    assert status == 200
    # the restarted server runs normally (a clean stop is checked again by later tests)
    assert pg_state(agent_pgdata(pair)) == "in production"


def test_kill_9_postgres_wrapper_recovers(pair):
    """The wrapper dies, the postmaster lives on (reparented): the next wrapper stops it (fast
    shutdown, so no crash recovery) before starting a new one."""
    wait_healthy(AGENT_PORT, AGENT)
    pgdata = "/var/lib/postgresql/data/pgdata"
    old_pm = int(dexec(AGENT, "head", "-n1", f"{pgdata}/postmaster.pid").stdout)
    wrapper = supervised_pid(AGENT, "postgres")
    before = len(logs(AGENT))
    dexec(AGENT, "kill", "-9", str(wrapper))
    wait_until(lambda: supervised_pid(AGENT, "postgres") not in (0, wrapper), 30, what="wrapper restarted")

    def new_postmaster():
        r = dexec(AGENT, "head", "-n1", f"{pgdata}/postmaster.pid", check=False)
        return r.returncode == 0 and r.stdout.strip() and int(r.stdout) != old_pm
    wait_until(new_postmaster, 60, what="a new postmaster")
    wait_healthy(AGENT_PORT, AGENT, timeout=60)
    new = logs(AGENT)[before:]
    assert "still running without its wrapper; fast shutdown" in new, new[-3000:]
    for marker in CRASH_MARKERS:  # it was stopped cleanly, not killed
        assert marker not in new, marker


def test_container_killed_then_started_recovers(pair):
    """docker kill (what a stop timeout of 0 does): crash recovery on the next start, a stale
    postmaster.pid whose pid may now be another process, and no help needed."""
    wait_healthy(AGENT_PORT, AGENT)
    status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "before docker kill"})
    kid = body["id"]
    docker("kill", AGENT, check=True)
    wait_until(lambda: docker("inspect", "--format", "{{.State.Running}}", AGENT).stdout.strip() == "false",
               30, what="container stopped")
    assert pg_state(agent_pgdata(pair)) == "in production"
    before = len(logs(AGENT))
    docker("start", AGENT, check=True)
    wait_healthy(AGENT_PORT, AGENT, timeout=60)
    assert "database system was not properly shut down" in logs(AGENT)[before:]
    assert http(AGENT_PORT, "GET", f"/api/v1/knowledge/{kid}")[1]["content"] == "before docker kill"


def test_wedged_api_is_restarted_by_health_monitor(pair):
    wait_healthy(AGENT_PORT, AGENT)
    wait_until(lambda: '"state":"healthy"' in dexec(AGENT, "cat", "/tmp/hive/health.json").stdout,
               20, what="health-monitor saw healthy")
    pid = supervised_pid(AGENT, "api")
    dexec(AGENT, "kill", "-STOP", str(pid))
    wait_until(lambda: supervised_pid(AGENT, "api") not in (0, pid), 60,
               what="health-monitor restarted the wedged api")
    wait_healthy(AGENT_PORT, AGENT, timeout=30)
    wait_until(lambda: "health: unhealthy -> healthy" in logs(AGENT), 30,
               what="health-monitor recorded the recovery")
    text = logs(AGENT)
    monitor = "\n".join(l for l in text.splitlines() if l.startswith("health-monitor | "))
    assert "restarting the api" in monitor, monitor
    assert "health: healthy -> unhealthy" in monitor, monitor
    state = wait_until(lambda: (lambda t: t if '"state":"healthy"' in t else None)(
        dexec(AGENT, "cat", "/tmp/hive/health.json").stdout), 20, what="state file healthy")
    assert '"api_restarts":0' not in state, state


def test_genie_still_healthy_and_stops_clean(pair):
    # everything done to the agent did not disturb genie
    assert healthy(GENIE_PORT)
    stop_clean(GENIE, pair["base"] / "postgres-genie" / "pgdata")


def test_agent_stops_clean_after_crashes(pair):
    # after the kill -9s and the wedge, docker stop -t 30 still leaves "shut down"
    wait_healthy(AGENT_PORT, AGENT)
    assert stop_clean(AGENT, agent_pgdata(pair)) < 30


def free_test_ports():
    """The pair's containers hold the test ports: remove them before other containers start."""
    rm_containers(AGENT, GENIE)


def split_dir(tmp_path, major, user="agent", db="hive_agent"):
    """A data directory made by the split stack's postgres image (uid 999), cleanly stopped,
    holding one marker row. Returns (host dir holding pgdata, marker)."""
    image = f"localhost/hive-split-postgres:{major}"
    if docker("image", "inspect", image).returncode != 0:
        run([ROOT / "fixtures" / "split" / "build-images.sh", str(major)], check=True)
    data = make_data_dir(tmp_path / f"split-{major}", 999, 999)
    name = f"hd-split-{major}"
    rm_containers(name)
    docker("run", "-d", "--name", name, "-e", f"POSTGRES_USER={user}", "-e", f"POSTGRES_DB={db}",
           "-e", f"POSTGRES_PASSWORD={PASSWORD}", "-v", f"{data}:/var/lib/postgresql/data",
           image, check=True)
    try:
        def ready():
            r = docker("exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user, "-d", db)
            return r.returncode == 0
        wait_until(ready, 90, what=f"split postgres {major} ready")
        marker = f"split-{major}-{time.time_ns()}"
        r = docker("exec", name, "psql", "-X", "-qAt", "-h", "/var/run/postgresql", "-U", user, "-d", db,
                   "-v", "ON_ERROR_STOP=1", "-c",
                   f"CREATE TABLE split_marker(v text); INSERT INTO split_marker VALUES ('{marker}')")
        assert r.returncode == 0, r.stderr
        docker("stop", "-t", "30", name, check=True)
        assert pg_state(data / "pgdata") == "shut down"
    finally:
        rm_containers(name)
    return data, marker


def test_adopts_split_data_dir_unchanged_as_uid_999(image, tmp_path):
    """The split stack's directory (uid 999, superuser agent) served by the unified container
    from the template hive-migrate up uses, run as 999:999 (an arbitrary uid) and publishing
    PostgreSQL on 127.0.0.1."""
    free_test_ports()
    import psycopg
    data, marker = split_dir(tmp_path, 17)
    pgdata = data / "pgdata"
    sysid = system_identifier(pgdata)
    own_conf = {f: (pgdata / f).read_bytes() for f in ("pg_hba.conf", "postgresql.conf")}
    env = {"HIVE_DATA_DIR": str(data), "HIVE_DB_USER": "agent", "HIVE_DB_NAME": "hive_agent",
           "HIVE_DB_PASSWORD": PASSWORD, "HIVE_BACKUP_PASSWORD": BACKUP_PASSWORD,
           "HIVE_API_PORT": str(AGENT_PORT), "HIVE_PG_PORT": str(AGENT_PG_PORT),
           "HIVE_CONTAINER_NAME": "hd-adopt-unified", "HIVE_UID": "999", "HIVE_GID": "999"}
    rm_containers("hd-adopt-unified")
    try:
        compose(TEMPLATES["agent"], "hd-adopt-unified", env, "up", "-d")
        wait_healthy(AGENT_PORT, "hd-adopt-unified")
        text = logs("hd-adopt-unified")
        assert "not re-initialised" in text and "initialising a new" not in text
        assert system_identifier(pgdata) == sysid
        for f, content in own_conf.items():
            assert (pgdata / f).read_bytes() == content, f"{f} of the adopted directory changed"
        assert (pgdata / "PG_VERSION").read_text().strip() == "17"
        # published on 127.0.0.1:HIVE_PG_PORT: the app role and the backup role log in with scram
        with psycopg.connect(host="127.0.0.1", port=AGENT_PG_PORT, user="agent", password=PASSWORD,
                             dbname="hive_agent", connect_timeout=5) as conn:
            assert conn.execute("SELECT v FROM split_marker").fetchone()[0] == marker
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE oid = 10").fetchone()[0]
            assert conn.execute("SELECT to_regclass('agno.knowledge_base')").fetchone()[0]
        with psycopg.connect(host="127.0.0.1", port=AGENT_PG_PORT, user="hive_backup",
                             password=BACKUP_PASSWORD, dbname="postgres", connect_timeout=5) as conn:
            assert conn.execute("SELECT rolreplication FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        ports = docker("port", "hd-adopt-unified", "5432", check=True).stdout
        assert ports.strip().startswith("127.0.0.1:"), ports
        status, body = http(AGENT_PORT, "POST", "/api/v1/knowledge", {"content": "on adopted dir"})
        assert status == 200
        docker("stop", "-t", "30", "hd-adopt-unified", check=True)
        assert pg_state(pgdata) == "shut down"
    finally:
        compose(TEMPLATES["agent"], "hd-adopt-unified", env, "down", "-t", "30", check=False)
        rm_containers("hd-adopt-unified")
    # what hive-migrate up does: chown 999 -> 1000, then the default uid serves it too
    chown_r(data, 1000, 1000)
    name = "hd-adopt2-unified"
    rm_containers(name)
    try:
        docker("run", "-d", "--name", name, "-e", "HIVE_PROFILE=agent", "-e", f"HIVE_DB_PASSWORD={PASSWORD}",
               "-e", f"HIVE_API_PORT={AGENT_PORT}", "-p", f"{AGENT_PORT}:{AGENT_PORT}",
               "-v", f"{data}:/var/lib/postgresql/data", IMAGE, check=True)
        wait_healthy(AGENT_PORT, name)
        assert psql(name, "agent", "hive_agent", "SELECT v FROM split_marker") == marker
    finally:
        rm_containers(name)


def test_fresh_init_under_arbitrary_uid_without_passwd_entry(image, tmp_path):
    free_test_ports()
    data = make_data_dir(tmp_path / "uid", 123456, 123456)
    name = "hd-uid-unified"
    rm_containers(name)
    try:
        secret = tmp_path / "db-password"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o644)
        # the password from a *_FILE secret (trailing newline stripped), not from the env
        docker("run", "-d", "--name", name, "--user", "123456:123456", "-e", "HIVE_PROFILE=genie",
               "-e", "HIVE_DB_PASSWORD_FILE=/run/secrets/db", "-v", f"{secret}:/run/secrets/db:ro",
               "-e", f"HIVE_API_PORT={GENIE_PORT}",
               "-p", f"{GENIE_PORT}:{GENIE_PORT}", "-v", f"{data}:/var/lib/postgresql/data",
               IMAGE, check=True)
        wait_healthy(GENIE_PORT, name)
        assert PASSWORD not in logs(name)
        env = docker("inspect", "--format", "{{json .Config.Env}}", name, check=True).stdout
        assert PASSWORD not in env
        assert os.stat(data / "pgdata").st_uid == 123456
        assert psql(name, "hive", "hive_genie", "SELECT current_user") == "hive"
        # health names the failing part: the extension, then the database
        psql(name, "postgres", "hive_genie", "DROP EXTENSION vector CASCADE")
        status, body = http(GENIE_PORT, "GET", "/api/v1/health")
        assert status == 503 and body["failing"] == "pgvector", body
        dexec(name, "supervisorctl", "-c", "/etc/hive/supervisord.conf", "stop", "postgres")
        status, body = http(GENIE_PORT, "GET", "/api/v1/health")
        assert status == 503 and body["failing"] == "database", body
        assert pg_state(data / "pgdata") == "shut down"
        r = dexec(name, "/usr/local/bin/hive-healthcheck", check=False)
        assert r.returncode == 1 and "postgres" in r.stdout
        dexec(name, "supervisorctl", "-c", "/etc/hive/supervisord.conf", "start", "postgres")
        # the per-start setup (on the api's restart) recreates the extension
        dexec(name, "supervisorctl", "-c", "/etc/hive/supervisord.conf", "restart", "api")
        wait_healthy(GENIE_PORT, name, timeout=30)
        docker("stop", "-t", "30", name, check=True)
        assert pg_state(data / "pgdata") == "shut down"
    finally:
        rm_containers(name)


def test_refuses_postgresql_18_data_dir(image, tmp_path):
    free_test_ports()
    data, _ = split_dir(tmp_path, 18)
    chown_r(data, 1000, 1000)
    pgdata = data / "pgdata"
    sysid = system_identifier(pgdata)
    name = "hd-pg18-unified"
    env = {"HIVE_DATA_DIR": str(data), "HIVE_DB_PASSWORD": PASSWORD, "HIVE_API_PORT": str(AGENT_PORT),
           "HIVE_PG_PORT": str(AGENT_PG_PORT), "HIVE_CONTAINER_NAME": name}
    rm_containers(name)
    try:
        compose(TEMPLATES["agent"], name, env, "up", "-d")
        wait_until(lambda: "REFUSED" in logs(name), 30, what="refusal message")
        text = logs(name)
        assert "PostgreSQL 18" in text and "this image runs PostgreSQL 17" in text
        assert text.count("REFUSED") == 1
        # no crash loop: the container stays up, unhealthy, never restarted, PostgreSQL not started
        r = run(["podman", "healthcheck", "run", name])
        assert r.returncode != 0
        assert docker("inspect", "--format", "{{.RestartCount}}", name, check=True).stdout.strip() == "0"
        assert "postgres | " not in logs(name)
        assert (pgdata / "PG_VERSION").read_text().strip() == "18"
        assert system_identifier(pgdata) == sysid
        assert pg_state(pgdata) == "shut down"
    finally:
        compose(TEMPLATES["agent"], name, env, "down", "-t", "30", check=False)
        rm_containers(name)
    # HIVE_ON_REFUSE=exit: exits 1 instead of waiting
    # (no --rm: podman's compat API then loses the exit code)
    rm_containers("hd-pg18-exit")
    try:
        r = docker("run", "--name", "hd-pg18-exit", "-e", "HIVE_ON_REFUSE=exit",
                   "-e", f"HIVE_DB_PASSWORD={PASSWORD}", "-v", f"{data}:/var/lib/postgresql/data", IMAGE)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", "hd-pg18-exit", check=True).stdout.strip()
        assert code == "1" and "REFUSED" in r.stderr + r.stdout, (code, r.stdout, r.stderr)
    finally:
        rm_containers("hd-pg18-exit")
