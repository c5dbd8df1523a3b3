"""check, up and rollback on the other upstream layouts (fixtures/upstream):

* the later docker/agent/docker-compose.yml: agent-postgres + agent-api, credentials in the
  list environment, an env_file two levels up, the database as the image's own uid 999 (up
  changes the owner to 1000 and rollback gives it back), other tuning flags; named with
  --project-name (prefix hs-b-, ports 28533/28887);
* the agent stack with its data in a named volume instead of a bind mount, run as an
  arbitrary uid (1234): the volume's Mountpoint is migrated in place (prefix hs-v-, ports
  28534/28888).
"""
import json
import os

import pytest

from conftest import run, wait_until
from migrate_helpers import container_state, describe
from splitstack import ensure_images
from test_upstream import IMAGE, TEMPLATES, ensure_unified_image, hmig, remove_unified, settings_of
from upstreamstack import UpstreamStack, assert_owners_kept, owners

AGENT_FILE = "docker/agent/docker-compose.yml"
TEMPLATES_FILE = "docker/templates/agent.yml"


def make_stack(tmp_path_factory, unified, **kw):
    ensure_images(pg=(17,))
    ensure_unified_image(IMAGE)
    s = UpstreamStack(tmp_path_factory.mktemp(kw["prefix"] + "upstream") / "work space", **kw)
    s.remove_leftovers(volumes=True)
    remove_unified(unified)
    s.create()
    s.up()
    s.fill("1MB", seed=12)
    s.before = s.fingerprint()
    assert s.before["agno.sessions"][0] > 0
    return s


def migrate_and_back(s, unified, compose_opts, settings, owner_before):
    """up with compose_opts, checks on the unified container, rollback with --stack only
    (from another directory): data and owners as before."""
    owners_before = owners(s.mount_dir())
    assert owners_before["pgdata"] == owner_before
    res = hmig(s, "up", *compose_opts, "--yes", "--json", "--image", IMAGE, "--templates", TEMPLATES,
               "--container-name", unified, "--health-timeout", "90")
    assert res.returncode == 0, describe(res)
    assert json.loads(res.stdout)["profiles"][0]["result"] == "migrated"
    assert s.state() == "exited" and container_state(unified) == "running"
    wait_until(s.api_healthy, 30, what="unified API")
    assert s.fingerprint() == s.before
    got = settings_of(s.pg_port(), s.user(), s.password())
    assert {k: got[k] for k in settings} == {k: (v, "command line") for k, v in settings.items()}
    assert os.stat(s.data_dir()).st_uid == 1000  # the unified container's uid
    rb = hmig(s, "rollback", "--stack", s.path, "--yes", "--json", "--health-timeout", "90", cwd="/")
    assert rb.returncode == 0, describe(rb)
    assert s.state() == "running" and s.state(role="api") == "running"
    assert container_state(unified) is None
    wait_until(s.api_healthy, 60, what="split API healthy")
    assert s.fingerprint() == s.before
    after = owners(s.mount_dir())
    assert_owners_kept(owners_before, after)
    assert after["pgdata"] == owner_before


@pytest.fixture(scope="module")
def agent_api(engine, tmp_path_factory):
    s = make_stack(tmp_path_factory, "hs-b-unified", variant="agent-api", prefix="hs-b-",
                   pg_port=28533, api_port=28887, project_name="hs-b-agent")
    yield s
    remove_unified("hs-b-unified")
    s.down(volumes=True)


@pytest.fixture(scope="module")
def volume_stack(engine, tmp_path_factory):
    s = make_stack(tmp_path_factory, "hs-v-unified", variant="templates", prefix="hs-v-",
                   pg_port=28534, api_port=28888, project_name="hs-v-templates", volume=True,
                   uid=1234)
    yield s
    remove_unified("hs-v-unified")
    s.down(volumes=True)


def test_agent_api_check(agent_api):
    s = agent_api
    res = hmig(s, "check", "-f", AGENT_FILE, "--project-name", "hs-b-agent", "--json")
    assert res.returncode == 10, describe(res)
    rep = json.loads(res.stdout)
    assert {p["code"] for p in rep["problems"]} == {"server-running", "owner-uid"}
    st = rep["stack"]
    assert st["project"] == "hs-b-agent"
    assert (st["database"]["service"], st["api"]["service"]) == ("agent-postgres", "agent-api")
    assert st["database"]["user"] == ""  # the image's own (999)
    assert (st["database"]["user_name"], st["database"]["port"]) == ("test_user", 28533)
    assert st["api"]["port"] == 28887
    assert {c["name"]: c["value"] for c in st["settings"]["carried"]} == {
        "max_connections": "200", "shared_buffers": "256MB", "effective_cache_size": "1GB"}
    assert rep["data_directory"]["owner_uid"] == 999
    # a wrong --db-service names the services there are
    bad = hmig(s, "check", "-f", AGENT_FILE, "--db-service", "postgres-agent", "--json")
    assert bad.returncode == 12
    msg = json.loads(bad.stdout)["problems"][0]["message"]
    assert "agent-api, agent-postgres" in msg or "agent-postgres, agent-api" in msg


def test_agent_api_up_and_rollback(agent_api):
    s = agent_api
    migrate_and_back(s, "hs-b-unified", ["-f", AGENT_FILE, "--project-name", "hs-b-agent"],
                     {"max_connections": "200", "shared_buffers": "256MB",
                      "effective_cache_size": "1GB"}, (999, 999))


def test_named_volume_check(volume_stack):
    s = volume_stack
    res = hmig(s, "check", "-f", TEMPLATES_FILE, "--project-name", "hs-v-templates", "--json")
    assert res.returncode == 10, describe(res)
    rep = json.loads(res.stdout)
    db = rep["stack"]["database"]
    assert (db["mount"], db["volume"]) == ("volume", "hs-v-hive_agent_pgdata")
    assert db["data_dir"] == str(s.mount_dir())
    assert rep["data_dir"] == str(s.data_dir())
    assert db["user"] == "1234:1234" and rep["data_directory"]["owner_uid"] == 1234


def test_named_volume_up_and_rollback(volume_stack):
    s = volume_stack
    migrate_and_back(s, "hs-v-unified", ["-f", TEMPLATES_FILE, "--project-name", "hs-v-templates"],
                     {"effective_cache_size": "512MB", "random_page_cost": "1.1"}, (1234, 1234))
