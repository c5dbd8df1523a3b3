"""hive-migrate up: the downtime path (issue 13). The post-start fingerprint runs under a
snapshot opened as soon as the unified PostgreSQL accepts connections, in parallel with the
health wait, and only when that snapshot provably predates every write of the new server
(its xmax is the next XID of the split cluster's shutdown checkpoint). What users rely on:
a write that reaches the new server before the snapshot is detected (fall back, and the
comparison then fails and rolls back: never a "migrated" with unchecked data); a write after
the snapshot is invisible to it (the comparison is about the data that was moved); a kill -9
during that fingerprint resumes. Stack prefix hp-, ports 32886 (API) / 32532 (PostgreSQL)."""
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import HM, wait_until
from migrate_helpers import (EXIT_ROLLED_BACK, TEMPLATES, docker, ensure_unified_image, hm_env,
                             summary)
from splitstack import SplitStack, ensure_images, read_pg_state

PREFIX = "hp-"
API_PORT = 32886
PG_PORT = 32532
UNIFIED = "hp-hive-agent-unified"
TABLE = "hive.agent_metrics"


def remove_unified():
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(Path(tmp_path_factory.mktemp("hp-fp")) / "hp-stack", profile="agent",
                   name_prefix=PREFIX, ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    remove_unified()
    s.create()
    s.up()
    s.fill("2MB", seed=11)
    s.before = s.fingerprint()
    assert s.before[TABLE][0] > 3
    yield s
    remove_unified()
    s.down()


def up_cmd(s):
    return [str(HM), "up", "--stack", str(s.path), "--profile", "agent", "--yes", "--json",
            "--container-name", UNIFIED, "--templates", str(TEMPLATES), "--health-timeout", "90"]


def stopped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def up_paused(s, point, action, **env_extra):
    """Run up paused (SIGSTOP) at point, run action() while it is stopped, resume it."""
    env = dict(hm_env(), HIVE_MIGRATE_PAUSE=point, **env_extra)
    proc = subprocess.Popen(up_cmd(s), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: stopped(proc.pid) or proc.poll() is not None, 300, what=f"pause at {point}")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        action()
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def delete_rows(s, n=3):
    """A write on the server listening on the stack's port (the unified one by then)."""
    with s.connect() as conn:
        conn.execute(f"DELETE FROM {TABLE} WHERE ctid IN (SELECT ctid FROM {TABLE} LIMIT {n})")


def test_write_before_the_snapshot_is_detected(stack):
    s = stack
    rc, out, err = up_paused(s, "before:start-snapshot", lambda: delete_rows(s))
    # the snapshot no longer predates the new server's writes: fall back, compare, roll back
    assert "falling back to the fingerprint after the health wait" in err, err[-3000:]
    assert "shutdown checkpoint" in err
    assert rc == EXIT_ROLLED_BACK, err[-3000:]
    assert "content differs" in err or "rows, had" in err, err[-3000:]
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert s.fingerprint() == s.before
    # the client's write is not deleted with the failed attempt: its directory is kept
    kept = Path(summary(subprocess.CompletedProcess([], rc, out, err))["displaced_dir"])
    assert "kept the failed attempt's data directory" in err and "assigned transaction IDs" in err
    assert read_pg_state(kept / "pgdata") == "shut down"
    subprocess.run(["rm", "-rf", str(kept)], check=True)


def test_failure_after_health_keeps_the_apps_writes(stack):
    """The app answers from the health on while the fingerprint may still run; a failure from
    then on restores the snapshot and keeps the attempt's directory with what the app wrote
    meanwhile (never deleted). HIVE_MIGRATE_FAIL injects the failure right after the health."""
    s = stack
    rc, out, err = up_paused(s, "after:unified-health", lambda: delete_rows(s, 1),
                             HIVE_MIGRATE_FAIL="after:unified-health")
    assert rc == EXIT_ROLLED_BACK, err[-3000:]
    assert "injected failure at after:unified-health" in err, err[-3000:]
    o = summary(subprocess.CompletedProcess([], rc, out, err))
    kept = Path(o["displaced_dir"])
    assert kept.is_dir() and read_pg_state(kept / "pgdata") == "shut down"
    assert "kept the failed attempt's data directory" in err and "assigned transaction IDs" in err
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert s.fingerprint() == s.before                # the snapshot: the data of the stop
    subprocess.run(["rm", "-rf", str(kept)], check=True)


def test_failure_after_health_without_writes(stack):
    """Without a transaction on the unified server the failed attempt's directory goes."""
    s = stack
    res = subprocess.run(up_cmd(s), env=dict(hm_env(), HIVE_MIGRATE_FAIL="after:unified-health"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-3000:]
    err = res.stderr
    assert "the failed attempt's data directory: no transaction of the unified server" in err, err[-3000:]
    assert not list(s.mount_dir().parent.glob(s.mount_dir().name + ".displaced-*"))
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert s.fingerprint() == s.before


def test_kill_during_the_fingerprint_resumes(stack):
    s = stack
    res = subprocess.run(up_cmd(s), env=hm_env("during:start-fingerprint"), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    # rerun: the unified server already ran on the data, no start snapshot is provable
    res = subprocess.run(up_cmd(s), env=hm_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert summary(res)["fingerprint_during_health"] is False
    assert s.fingerprint() == s.before
    rb = subprocess.run([str(HM), "rollback", "--stack", str(s.path), "--profile", "agent", "--yes",
                         "--json", "--health-timeout", "90"], env=hm_env(), capture_output=True,
                        text=True, timeout=600)
    assert rb.returncode == 0, rb.stderr[-3000:]
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert s.fingerprint() == s.before


def test_write_after_the_snapshot_is_invisible_to_it(stack):
    s = stack
    # every table of more than 2 blocks is read in 1-block ranges by the two workers (the
    # split of large tables): the partial counts and sums must add up to step 2's
    rc, out, err = up_paused(s, "after:start-snapshot", lambda: delete_rows(s, 2),
                             HIVE_MIGRATE_FP_CHUNK_BLOCKS="1")
    assert rc == 0, err[-3000:]
    o = summary(subprocess.CompletedProcess([], rc, out, err))
    assert o["result"] == "migrated"
    assert o["fingerprint_during_health"] is True
    st = o["step_seconds"]
    assert 0 < st["pg_ready"] <= st["health"] and st["fingerprint"] > 0
    # the downtime runs from the start of the stop to the API's health (the stop included);
    # the data is verified at or after that
    assert o["downtime_seconds"] >= st["stop"] + st["start"] + st["health"] - 0.05, o
    assert o["verified_seconds"] >= o["downtime_seconds"] > 0, o
    assert "fingerprint under snapshot" in err
    m = re.search(r"(\d+) tables in (\d+) pieces", err)
    assert m and int(m.group(2)) > int(m.group(1)), err[-3000:]   # large tables were split
    # the write is real (the new server has it) and the comparison did not see it
    after = s.fingerprint()
    assert after[TABLE][0] == s.before[TABLE][0] - 2
    assert {k: v for k, v in after.items() if k != TABLE} == \
        {k: v for k, v in s.before.items() if k != TABLE}
