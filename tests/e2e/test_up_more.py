"""More hive-migrate up end-to-end tests (prefix "hx-", host ports 26xxx):

* `up --profile all` on a split stack with both profiles, then `rollback --profile all`;
* `up` on a split cluster whose server was SIGKILLed (pg_control "in production", no server):
  up refuses in preflight (exit 37) and changes nothing; starting the split stack recovers
  the cluster with every committed row, and up then migrates it (snapshot "shut down").
"""
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import wait_until
from migrate_helpers import (EXIT_PREFLIGHT, TEMPLATES, container_state, describe, docker,
                             ensure_unified_image, hm_run)
from splitstack import SplitStack, ensure_images

PREFIX = "hx-"
PORTS_ALL = {"agent_api": 26886, "agent_pg": 26532, "genie_api": 26887, "genie_pg": 26533}
CRASH_PREFIX = "hx-crash-"
PORTS_CRASH = {"agent_api": 26888, "agent_pg": 26534}


def remove_containers(*names):
    """Stop cleanly (-t 30), then remove; absent containers are fine."""
    for name in names:
        docker("stop", "-t", "30", name)
        docker("rm", "-f", name)


def health_status(name):
    """The engine's health status of a container ("healthy", "starting", ...) or None."""
    r = docker("inspect", "-f", "{{.State.Health.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else None


def profiles_by_name(res):
    """{profile: summary} of an up/rollback --json run."""
    return {p["profile"]: p for p in json.loads(res.stdout)["profiles"]}


def tree_facts(root):
    """{relative path: (mode, uid, gid, size, mtime_ns)} of every entry below root, plus
    the SHA-256 of every regular file: equal results = the directory was not touched."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                             st.st_mtime_ns, digest)
    return out


# --- 1. both profiles at once ----------------------------------------------------------------
@pytest.fixture
def stack_all(engine, tmp_path):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(tmp_path / "hx-all-stack", profile="all", name_prefix=PREFIX, ports=PORTS_ALL)
    unified = [f"{PREFIX}hive-{p}-unified" for p in s.profiles]
    s.down()  # leftovers of an aborted earlier run under the same names
    remove_containers(*unified)
    try:
        s.create()
        s.up()
        for i, p in enumerate(s.profiles):
            s.fill("1MB", seed=11 + i, profile=p)
        yield s
    finally:
        remove_containers(*unified)
        s.down()


def test_up_all_then_rollback_all(stack_all):
    s = stack_all
    before = {p: s.fingerprint(p) for p in s.profiles}
    for p in s.profiles:
        assert before[p]["agno.knowledge_base"][0] > 0, f"{p} was not filled"
    assert before["agent"] != before["genie"]          # different seeds: a mix-up would show
    unified = {p: f"{PREFIX}hive-{p}-unified" for p in s.profiles}

    # per-profile names/ports cannot be given for all; the prefix can
    bad = hm_run("up", "--stack", s.path, "--profile", "all", "--yes",
                 "--container-name", "hx-x", "--templates", TEMPLATES)
    assert bad.returncode == 2, describe(bad)
    assert "--name-prefix" in bad.stderr

    res = hm_run("up", "--stack", s.path, "--profile", "all", "--yes", "--json",
                 "--name-prefix", PREFIX, "--templates", TEMPLATES, "--health-timeout", "90")
    assert res.returncode == 0, describe(res)
    out = profiles_by_name(res)
    assert set(out) == {"agent", "genie"}
    for p in s.profiles:
        assert out[p]["result"] == "migrated", out[p]
        assert out[p]["container"] == unified[p]
        assert out[p]["api_port"] == PORTS_ALL[f"{p}_api"]
        assert out[p]["pg_port"] == PORTS_ALL[f"{p}_pg"]
        assert os.path.exists(out[p]["archive"])
        # the split containers are stopped, the unified ones run and are healthy
        assert s.state(p, "postgres") == "exited"
        assert s.state(p, "api") == "exited"
        assert container_state(unified[p]) == "running"
        wait_until(lambda n=unified[p]: health_status(n) == "healthy", 60,
                   what=f"{unified[p]} healthy (engine healthcheck)")
        status, body = s.api_health(p)                 # same ports, now the unified container
        assert status == 200 and body["status"] == "healthy", body
        assert s.fingerprint(p) == before[p], f"{p} data differs after up"
        assert os.stat(s.data_dir(p)).st_uid == 1000
        assert s.password(p) not in res.stdout + res.stderr

    rb = hm_run("rollback", "--stack", s.path, "--profile", "all", "--yes", "--json",
                "--health-timeout", "90")
    assert rb.returncode == 0, describe(rb)
    rbout = profiles_by_name(rb)
    assert set(rbout) == {"agent", "genie"}
    for p in s.profiles:
        assert container_state(unified[p]) is None, f"{unified[p]} left behind"
        assert s.state(p, "postgres") == "running"
        assert s.state(p, "api") == "running"
        wait_until(lambda p=p: s.api_healthy(p), 60, what=f"split {p} API healthy")
        assert s.fingerprint(p) == before[p], f"{p} data differs after rollback"
        assert os.stat(s.data_dir(p)).st_uid == 999
        displaced = rbout[p].get("displaced_dir")
        if displaced:   # kept after a completed migration; it is ours to remove
            assert os.path.isdir(displaced)
            subprocess.run(["rm", "-rf", displaced], check=True)


# --- 2. a crashed split cluster --------------------------------------------------------------
@pytest.fixture
def crash_stack(engine, tmp_path):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(tmp_path / "hx-crash-stack", profile="agent", name_prefix=CRASH_PREFIX,
                   ports=PORTS_CRASH)
    unified = f"{CRASH_PREFIX}hive-agent-unified"
    s.down()
    remove_containers(unified)
    try:
        s.create()
        s.up()
        s.fill("1MB", seed=5)
        yield s
    finally:
        remove_containers(unified)
        s.down()


def test_crashed_cluster_is_refused_untouched(crash_stack):
    s = crash_stack
    before = s.fingerprint()
    assert before["agno.knowledge_base"][0] > 0
    pg = s.container()
    unified = f"{CRASH_PREFIX}hive-agent-unified"

    kill = docker("kill", pg)                         # SIGKILL: no shutdown checkpoint
    assert kill.returncode == 0, kill.stderr
    wait_until(lambda: s.state() == "exited", 30, what=f"{pg} exited")
    assert s.state() == "exited"                      # not restarted by its restart policy
    assert s.pg_state() == "in production"            # crashed: pg_control was never updated
    control = (s.data_dir() / "global" / "pg_control").read_bytes()
    facts = tree_facts(s.mount_dir())

    res = hm_run("up", "--stack", s.path, "--profile", "agent", "--yes", "--json",
                 "--container-name", unified, "--templates", TEMPLATES, "--health-timeout", "60")
    # refused in preflight, with the cause and what to do
    assert res.returncode == EXIT_PREFLIGHT, describe(res)
    assert "in production" in res.stderr and "no server is running" in res.stderr, describe(res)
    assert "recovers" in res.stderr and "stop -t 30" in res.stderr, describe(res)
    # ... and nothing changed: same bytes, owners, modes and times in the data directory,
    # no snapshot, no journal, no unified container, the cluster still down
    assert (s.data_dir() / "global" / "pg_control").read_bytes() == control
    assert tree_facts(s.mount_dir()) == facts
    assert s.pg_state() == "in production"
    state = s.path / ".hive-migrate"
    assert not (state / "journal-agent.json").exists()
    archives = state / "archives"
    assert not archives.exists() or not list(archives.iterdir())
    assert container_state(unified) is None
    assert s.state() == "exited"

    # the hint works: starting the split stack recovers the cluster with every committed
    # row, and up then migrates it; the snapshot holds a cleanly shut down cluster
    s.start()
    assert s.fingerprint() == before
    res = hm_run("up", "--stack", s.path, "--profile", "agent", "--yes", "--json",
                 "--container-name", unified, "--templates", TEMPLATES, "--health-timeout", "60")
    assert res.returncode == 0, describe(res)
    out = profiles_by_name(res)["agent"]
    assert out["result"] == "migrated"
    meta = subprocess.run(["tar", "--zstd", "-xOf", out["archive"], "hive-migrate/metadata.json"],
                          capture_output=True, text=True, check=True).stdout
    assert json.loads(meta)["pg_control"]["state"] == "shut down"
    assert container_state(unified) == "running"
    assert s.api_healthy()                            # same port, now the unified container
    assert s.fingerprint() == before
