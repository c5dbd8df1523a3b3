"""check, up and rollback on the stack users really run: upstream automagik-hive's
docker/templates/agent.yml (fixtures/upstream), in a directory whose path holds a space.

What differs from fixtures/split and is exercised here: the compose file is not in the
stack's root and its bind mount is relative to it (../../data/postgres-agent), the services
are postgres-agent + app-agent (container hive-agents-agent), PostgreSQL runs as
user "1000:1000" (nothing to chown, owners exactly as before after rollback), tuning flags in
`command:` (carried into the unified container: SHOW proves it), environments as lists with
${VAR:-default} and the credentials at their defaults, a named bridge network, ports
published without a host IP. One stack for the whole module (prefix hs-a-, ports 28532/28886).
"""
import json
import os
from pathlib import Path

import psycopg
import pytest

from conftest import HM, ROOT, run, wait_until
from migrate_helpers import container_state, describe, hm_env
from splitstack import ensure_images
from upstreamstack import UpstreamStack, assert_owners_kept, owners

PREFIX = "hs-a-"
PG_PORT, API_PORT = 28532, 28886
UNIFIED = "hs-a-hive-agent-unified"
IMAGE = os.environ.get("HIVE_TEST_UNIFIED_IMAGE", "localhost/hive-unified:17")
TEMPLATES = ROOT / "docker" / "templates"
COMPOSE_FILE = "docker/templates/agent.yml"
SETTINGS = {"max_connections": "100", "shared_buffers": "128MB", "effective_cache_size": "512MB",
            "random_page_cost": "1.1", "effective_io_concurrency": "200"}
EXIT_USAGE = 2


def ensure_unified_image(image):
    """docker/build-image.sh builds IMAGE (idempotent)."""
    env = dict(os.environ, HIVE_IMAGE=image)
    run([ROOT / "docker" / "build-image.sh"], check=True, timeout=1800, env=env)


def remove_unified(name):
    run(["docker", "stop", "-t", "30", name])
    run(["docker", "rm", "-f", name])


def hmig(stack, *args, cwd=None, timeout=600):
    """hive-migrate ARGS run from the stack's directory (as a user would), no fault injection."""
    return run([HM, *args], cwd=cwd or stack.path, env=hm_env(), timeout=timeout)


def settings_of(port, user, password, dbname="hive_agent"):
    """{name: (setting as shown, source)} of the tuning settings on the server at port."""
    with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname,
                         connect_timeout=5) as conn:
        rows = conn.execute("SELECT name, current_setting(name), source FROM pg_settings "
                            "WHERE name = ANY(%s)", (list(SETTINGS),)).fetchall()
    return {name: (value, source) for name, value, source in rows}


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_images(pg=(17,))
    ensure_unified_image(IMAGE)
    s = UpstreamStack(tmp_path_factory.mktemp("hs-upstream") / "my hive", variant="templates",
                      prefix=PREFIX, pg_port=PG_PORT, api_port=API_PORT)
    s.remove_leftovers(volumes=True)
    remove_unified(UNIFIED)
    s.create()
    s.up()
    s.fill("2MB", seed=11)
    s.before = s.fingerprint()
    assert s.before["agno.knowledge_base"][0] > 0
    yield s
    remove_unified(UNIFIED)
    s.down(volumes=True)


def test_fixture_is_upstreams_layout(stack):
    """The stack runs as upstream's does: the database as uid 1000, with the flags given."""
    assert stack.compose_file.exists() and " " in str(stack.path)
    owner = os.stat(stack.data_dir())
    assert (owner.st_uid, owner.st_gid) == (1000, 1000)
    got = settings_of(PG_PORT, "agent", "agent")
    assert got["effective_cache_size"] == ("512MB", "command line")
    assert got["random_page_cost"] == ("1.1", "command line")
    r = run(["docker", "inspect", "-f", "{{.Config.User}}", stack.container()])
    assert r.stdout.strip() == "1000:1000"


def test_check_finds_the_stack_and_lists_settings(stack):
    res = hmig(stack, "check", "--compose-file", COMPOSE_FILE, "--json")
    assert res.returncode == 10, describe(res)  # warnings: the server runs
    rep = json.loads(res.stdout)
    codes = {p["code"] for p in rep["problems"]}
    assert codes == {"server-running"}, rep["problems"]  # no owner-uid: it is 1000 already
    st = rep["stack"]
    assert st["project"] == "templates"
    assert st["compose_files"] == [str(stack.compose_file)]
    assert st["database"]["service"] == "postgres-agent"
    assert st["database"]["container"] == PREFIX + "hive-postgres-agent"
    assert st["database"]["user"] == "1000:1000"
    assert st["database"]["data_dir"] == str(stack.mount_dir())
    assert st["database"]["port"] == PG_PORT and st["database"]["host_ip"] == ""
    assert st["api"]["service"] == "app-agent"
    assert st["api"]["container"] == PREFIX + "hive-agents-agent"
    assert st["api"]["port"] == API_PORT
    assert {c["name"]: c["value"] for c in st["settings"]["carried"]} == SETTINGS
    assert st["settings"]["not_carried"] == []
    assert rep["data_dir"] == str(stack.data_dir())
    assert rep["data_directory"]["owner_uid"] == 1000
    assert rep["server"]["connected"]  # defaults agent/agent on 127.0.0.1:28532
    # the text report names every setting it carries
    txt = hmig(stack, "check", "-f", COMPOSE_FILE)
    assert txt.returncode == 10, describe(txt)
    for name, value in SETTINGS.items():
        assert f"{name} = {value}" in txt.stdout
    assert "app-agent" in txt.stdout and "postgres-agent" in txt.stdout


def test_dry_run_from_elsewhere(stack, tmp_path):
    """Absolute paths from another directory, --stack for the state: the plan, nothing done."""
    res = hmig(stack, "up", "--stack", stack.path, "-f", stack.compose_file, "--dry-run",
               "--image", IMAGE, "--templates", TEMPLATES, "--container-name", UNIFIED,
               cwd=tmp_path)
    assert res.returncode == 0, describe(res)
    assert "app-agent postgres-agent" in res.stdout
    assert '-c "shared_buffers=128MB"' in res.stdout
    assert not (stack.path / ".hive-migrate" / "journal-agent.json").exists()
    assert stack.state() == "running"


def test_up_then_rollback(stack):
    s = stack
    owners_before = owners(s.mount_dir())
    assert set(owners_before.values()) == {(1000, 1000)}
    res = hmig(s, "up", "--compose-file", COMPOSE_FILE, "--yes", "--json", "--image", IMAGE,
               "--templates", TEMPLATES, "--container-name", UNIFIED, "--health-timeout", "90")
    assert res.returncode == 0, describe(res)
    out = json.loads(res.stdout)["profiles"][0]
    assert out["result"] == "migrated" and out["api_port"] == API_PORT and out["pg_port"] == PG_PORT
    assert "changing the owner of 0 entries" in res.stderr  # already 1000: nothing to chown
    assert (s.path / ".hive-migrate" / "owners-agent.txt").read_text() == ""
    # the split stack is stopped, the unified container serves the same rows on its ports
    assert s.state() == "exited" and s.state(role="api") == "exited"
    assert container_state(UNIFIED) == "running"
    wait_until(lambda: s.api_healthy(), 30, what="unified API on the split API's port")
    assert s.fingerprint() == s.before
    # with the split server's tuning flags
    got = settings_of(PG_PORT, "agent", "agent")
    assert {k: v[0] for k, v in got.items()} == SETTINGS
    assert {v[1] for v in got.values()} == {"command line"}
    # published as the split stack was: no host IP -> all interfaces
    ports = run(["docker", "port", UNIFIED]).stdout
    assert f"0.0.0.0:{PG_PORT}" in ports and f"0.0.0.0:{API_PORT}" in ports
    # the journal names the compose project, so rollback needs no options
    j = json.loads((s.path / ".hive-migrate" / "journal-agent.json").read_text())
    assert j["compose_files"] == [str(s.compose_file)] and j["project_name"] == "templates"
    assert (j["db_service"], j["api_service"]) == ("postgres-agent", "app-agent")
    env = s.path / ".hive-migrate" / "unified-agent.env"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert "HIVE_PG_SETTINGS='-c \"max_connections=100\"" in env.read_text()

    # options naming another project are refused, nothing changes
    bad = hmig(s, "up", "-f", COMPOSE_FILE, "--project-directory", s.path, "--yes")
    assert bad.returncode == EXIT_USAGE, describe(bad)
    assert "recorded in" in bad.stderr
    bad = hmig(s, "rollback", "-f", COMPOSE_FILE, "--project-name", "other", "--yes")
    assert bad.returncode == EXIT_USAGE, describe(bad)
    assert container_state(UNIFIED) == "running"

    # rollback from the stack's directory, with no compose options at all
    rb = hmig(s, "rollback", "--yes", "--json", "--health-timeout", "90")
    assert rb.returncode == 0, describe(rb)
    assert json.loads(rb.stdout)["profiles"][0]["result"] == "rolled-back"
    assert s.state() == "running" and s.state(role="api") == "running"
    assert container_state(UNIFIED) is None
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert s.fingerprint() == s.before
    assert_owners_kept(owners_before, owners(s.mount_dir()))
    assert set(owners(s.mount_dir()).values()) == {(1000, 1000)}
    # the split server runs with its own flags again
    assert settings_of(PG_PORT, "agent", "agent")["effective_cache_size"] == ("512MB", "command line")
    r = run(["docker", "inspect", "-f", "{{.Config.User}}", s.container()])
    assert r.stdout.strip() == "1000:1000"


def test_killed_up_resumes_with_the_recorded_project(stack):
    """kill -9 after the chown; `up` again with no compose options continues from the
    journal's project; rollback; data and owners as before."""
    s = stack
    owners_before = owners(s.mount_dir())
    env = dict(hm_env(), HIVE_MIGRATE_FAULT="after:chown")
    res = run([HM, "up", "-f", COMPOSE_FILE, "--yes", "--image", IMAGE, "--templates", TEMPLATES,
               "--container-name", UNIFIED], cwd=s.path, env=env, timeout=600)
    assert res.returncode == -9, describe(res)
    again = hmig(s, "up", "--yes", "--json", "--image", IMAGE, "--templates", TEMPLATES,
                 "--container-name", UNIFIED, "--health-timeout", "90")
    assert again.returncode == 0, describe(again)
    assert 'resuming the interrupted migration at step "chowned"' in again.stderr
    wait_until(s.api_healthy, 30, what="unified API")
    assert s.fingerprint() == s.before
    rb = hmig(s, "rollback", "--yes", "--health-timeout", "90")
    assert rb.returncode == 0, describe(rb)
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert s.fingerprint() == s.before
    assert_owners_kept(owners_before, owners(s.mount_dir()))


def test_profile_all_on_a_one_profile_file(stack):
    res = hmig(stack, "up", "-f", COMPOSE_FILE, "--profile", "all", "--yes")
    assert res.returncode == EXIT_USAGE, describe(res)
    assert "finds one database, postgres-agent" in res.stderr
    assert stack.state() == "running"


def test_refusals_read_through_compose(engine, tmp_path):
    """Stacks with nothing (or nothing unambiguous) to migrate, as compose itself reads
    them: one error line with the candidates or the way forward; nothing runs."""
    def check(text, *extra):
        f = tmp_path / "compose.yml"
        f.write_text(text)
        res = run([HM, "check", "-f", f, *extra], cwd=tmp_path)
        assert res.returncode == 12, describe(res)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("hive-migrate: error:")
        return res.stderr

    pg = "    image: localhost/hive-split-postgres:17\n    environment: [POSTGRES_PASSWORD=x]\n"
    two = ("services:\n  db-a:\n" + pg + "    volumes: ['./a:/var/lib/postgresql/data']\n"
           "  db-b:\n" + pg + "    volumes: ['./b:/var/lib/postgresql/data']\n")
    err = check(two)
    assert "2 PostgreSQL services" in err and "db-a (bind " in err and "db-b (bind " in err
    assert "--db-service" in err
    # upstream's own agent-postgres kept its data in the container
    err = check("services:\n  agent-postgres:\n    image: agnohq/pgvector:16\n"
                "    environment: [POSTGRES_PASSWORD=test_pass, PGDATA=/var/lib/postgresql/data/pgdata]\n"
                "  agent-api:\n    image: x\n    depends_on: [agent-postgres]\n")
    assert "keeps no data on the host" in err and "nothing to migrate" in err
    # a named volume that does not exist yet
    vol = ("services:\n  db:\n" + pg + "    volumes: ['pgdata:/var/lib/postgresql/data']\n"
           "volumes:\n  pgdata:\n    name: hs-r-missing-volume\n")
    err = check(vol)
    assert "hs-r-missing-volume" in err and "does not exist" in err
    # a volume mounted with options (nfs): not a host directory
    run(["docker", "volume", "rm", "-f", "hs-r-nfs-volume"])
    made = run(["docker", "volume", "create", "--opt", "type=nfs", "--opt", "o=addr=127.0.0.1",
                "--opt", "device=:/nowhere", "hs-r-nfs-volume"])
    try:
        assert made.returncode == 0, describe(made)
        err = check(vol.replace("hs-r-missing-volume", "hs-r-nfs-volume"))
        assert "mounted with options (type=nfs)" in err and "bind-mount" in err
    finally:
        run(["docker", "volume", "rm", "-f", "hs-r-nfs-volume"])
