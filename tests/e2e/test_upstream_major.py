"""The stack users really run, across majors: upstream automagik-hive's
docker/templates/agent.yml (fixtures/upstream: postgres-agent + app-agent, PostgreSQL as
user "1000:1000" with tuning flags in `command:`, in a directory whose path holds a space)
on an older PostgreSQL major than the unified image's. Upstream's image is agnohq/pgvector:16;
no Debian suite here ships 16, so PostgreSQL 15 (localhost/hive-split-postgres:15, set
through the compose file's own HIVE_UPSTREAM_PG_IMAGE in the project's .env) stands in.
`up` must copy the data logically onto the unified 17 with the split server's flags, keep
the old directory untouched (owners 1000:1000 as they were), and `rollback
--discard-new-writes` must bring the split stack back on it. Prefix hs-m-, ports 26532/26886.
"""
import json

import pytest

from conftest import HM, ROOT, run, wait_until
from major_helpers import snapshot_tree, tree
from migrate_helpers import container_state, describe, hm_env
from splitstack import ensure_images
from upstreamstack import UpstreamStack, owners

PREFIX = "hs-m-"
PG_PORT, API_PORT = 26532, 26886
UNIFIED = "hs-m-hive-agent-unified"
IMAGE = "localhost/hive-unified:17"
OLD_IMAGE = "localhost/hive-split-postgres:15"
TEMPLATES = ROOT / "docker" / "templates"
COMPOSE_FILE = "docker/templates/agent.yml"
SETTINGS = {"max_connections": "100", "shared_buffers": "128MB", "effective_cache_size": "512MB",
            "random_page_cost": "1.1", "effective_io_concurrency": "200"}
EXIT_WRITES_WOULD_BE_LOST = 39


def hmig(stack, *args, timeout=900):
    return run([HM, *args], cwd=stack.path, env=hm_env(), timeout=timeout)


def settings_of(s):
    with s.connect() as c:
        rows = c.execute("SELECT name, current_setting(name), source FROM pg_settings "
                         "WHERE name = ANY(%s)", (list(SETTINGS),)).fetchall()
    return {name: (value, source) for name, value, source in rows}


def remove_unified():
    for n in (UNIFIED, f"{UNIFIED}-major-dump", f"{UNIFIED}-major-restore"):
        run(["docker", "rm", "-f", n])


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_images(pg=(15,))
    run([ROOT / "docker" / "build-image.sh"], check=True, timeout=1800)
    s = UpstreamStack(tmp_path_factory.mktemp("hs-upstream-major") / "my hive", variant="templates",
                      prefix=PREFIX, pg_port=PG_PORT, api_port=API_PORT)
    s.remove_leftovers(volumes=True)
    remove_unified()
    s.create()
    # compose reads the project directory's .env: every later compose call (ours and the
    # tool's, rollback included) runs the old major's image
    (s.compose_file.parent / ".env").write_text(f"HIVE_UPSTREAM_PG_IMAGE={OLD_IMAGE}\n")
    s.up()
    s.fill("2MB", seed=13)
    s.before = s.fingerprint()
    assert s.pg_version() == "15" and s.before["agno.knowledge_base"][0] > 0
    yield s
    remove_unified()
    s.down(volumes=True)


def test_check_plans_the_major_upgrade(stack):
    res = hmig(stack, "check", "--compose-file", COMPOSE_FILE, "--image", IMAGE, "--json")
    rep = json.loads(res.stdout)
    codes = {p["code"] for p in rep["problems"]}
    assert "major-upgrade" in codes and "major-mismatch" not in codes, rep
    assert rep["verdict"] == "warnings", rep


def test_up_across_majors_then_rollback(stack):
    s = stack
    owners_before = owners(s.mount_dir())
    assert set(owners_before.values()) == {(1000, 1000)}
    res = hmig(s, "up", "--compose-file", COMPOSE_FILE, "--yes", "--json", "--image", IMAGE,
               "--templates", TEMPLATES, "--container-name", UNIFIED, "--health-timeout", "180")
    assert res.returncode == 0, describe(res)
    out = json.loads(res.stdout)["profiles"][0]
    assert out["result"] == "migrated" and out["cross_major"] is True and out["old_major"] == 15
    assert set(out["step_seconds"]) >= {"dump", "snapshot", "restore", "analyze", "verify"}
    j = json.loads((s.path / ".hive-migrate" / "journal-agent.json").read_text())
    assert (j["db_service"], j["api_service"]) == ("postgres-agent", "app-agent")
    # the new 17 cluster in the bind mount, the old 15 directory beside it as it was
    assert s.pg_version() == "17"
    old = s.mount_dir().parent / (s.mount_dir().name + ".pg15-old")
    assert (old / "pgdata" / "PG_VERSION").read_text().strip() == "15"
    assert tree(old) == snapshot_tree(j["archive"])
    assert set(owners(old).values()) == {(1000, 1000)}
    assert container_state(UNIFIED) == "running"
    wait_until(s.api_healthy, 60, what="unified API on the split API's port")
    assert s.fingerprint() == s.before
    got = settings_of(s)                       # the split server's flags, carried
    assert {k: v[0] for k, v in got.items()} == SETTINGS
    assert {v[1] for v in got.values()} == {"command line"}

    # a write on the unified 17 cannot go back into 15: refused without the flag
    with s.connect() as c:
        c.execute("CREATE TABLE public.hs_after (id int PRIMARY KEY)")
        c.execute("INSERT INTO public.hs_after VALUES (1), (2)")
    rb = hmig(s, "rollback", "--yes", "--health-timeout", "180")
    assert rb.returncode == EXIT_WRITES_WOULD_BE_LOST, describe(rb)
    assert "hs_after" in rb.stderr and container_state(UNIFIED) == "running"
    rb = hmig(s, "rollback", "--yes", "--json", "--discard-new-writes", "--health-timeout", "180")
    assert rb.returncode == 0, describe(rb)
    assert s.pg_version() == "15"
    assert s.state() == "running" and s.state(role="api") == "running"
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert s.fingerprint() == s.before
    assert set(owners(s.mount_dir()).values()) == {(1000, 1000)}
    assert settings_of(s)["effective_cache_size"] == ("512MB", "command line")
    r = run(["docker", "inspect", "-f", "{{.Config.User}} {{.Config.Image}}", s.container()])
    assert r.stdout.split()[0] == "1000:1000" and "hive-split-postgres:15" in r.stdout
    kept = s.mount_dir().parent / (s.mount_dir().name + ".pg17-new")
    assert (kept / "pgdata" / "PG_VERSION").read_text().strip() == "17"
