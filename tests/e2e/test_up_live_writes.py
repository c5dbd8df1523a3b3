"""hive-migrate up and rollback while the app keeps writing (issue 13). The fingerprint of step
2 is taken while the split API still serves, so the app may write after it and before the
stop; the comparison after the move, and the rollback's, must be about the data as it was
stopped, not as it was fingerprinted. What users rely on: an `up` under steady app traffic
migrates (the fingerprint is taken again from the stopped data when, and only when, a
transaction took an XID after it) with every acknowledged write on the unified server; a
failed `up` under traffic rolls back (never "rollback failed" because the restarted app
wrote before the check) with every write acknowledged before the stop in the split stack; a
live rollback under traffic keeps every acknowledged write; a client outside the stack that
keeps writing after the API stopped makes `up` give up and roll back with its writes kept.

Own names and ports: prefix "hl-", API 22886, PostgreSQL 22532, unified hl-hive-agent-unified."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import HM, wait_until
from migrate_helpers import (EXIT_ROLLED_BACK, TEMPLATES, docker, ensure_unified_image, hm_env,
                             summary)
from splitstack import SplitStack, ensure_images, read_pg_state

PREFIX = "hl-"
API_PORT = 22886
PG_PORT = 22532
UNIFIED = "hl-hive-agent-unified"


def remove_unified():
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


class AppTraffic(threading.Thread):
    """The app's users: one knowledge entry at a time through the API on API_PORT (the split
    API, then the unified one), paced, until stopped. acked: (name, wall time of the answer)
    of every POST answered 200; refused requests (the app is down) are retried later."""

    def __init__(self, tag):
        super().__init__(daemon=True)
        self.tag, self.acked, self.done = tag, [], threading.Event()

    def run(self):
        n = 0
        while not self.done.is_set():
            n += 1
            name = f"{self.tag}-{n}"
            body = json.dumps({"name": name, "content": f"live traffic {n}"}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{API_PORT}/api/v1/knowledge", data=body,
                                         method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    if r.status == 200:
                        self.acked.append((name, time.time()))
            except Exception:
                self.done.wait(0.1)  # the app is down: ask again a little later
            self.done.wait(0.02)  # pacing: about 30 writes a second

    def stop(self):
        self.done.set()
        self.join(30)
        assert not self.is_alive()


def names(s, tag):
    with s.connect() as conn:
        return {r[0] for r in conn.execute("SELECT name FROM agno.knowledge_base WHERE name LIKE %s",
                                           (f"{tag}-%",))}


def journal(s):
    return json.loads((Path(s.path) / ".hive-migrate" / "journal-agent.json").read_text())


@pytest.fixture
def stack(engine, tmp_path):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(tmp_path / "hl-stack", profile="agent", name_prefix=PREFIX,
                   ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    remove_unified()
    s.create()
    s.up()
    s.fill("2MB", seed=5)
    yield s
    remove_unified()
    s.down()
    for d in s.mount_dir().parent.glob(s.mount_dir().name + ".displaced-*"):
        shutil.rmtree(d)


def up_cmd(s):
    return [str(HM), "up", "--stack", str(s.path), "--profile", "agent", "--yes", "--json",
            "--container-name", UNIFIED, "--templates", str(TEMPLATES), "--health-timeout", "90"]


def run(cmd, env=None, timeout=900):
    return subprocess.run([str(c) for c in cmd], env=env or hm_env(), capture_output=True,
                          text=True, timeout=timeout)


def wait_acked(app, n, what):
    wait_until(lambda: len(app.acked) >= n, 60, what=what)


def test_up_under_app_traffic(stack):
    s = stack
    app = AppTraffic("hl-up")
    app.start()
    try:
        wait_acked(app, 10, "app traffic on the split stack")
        res = run(up_cmd(s))
        seen = len(app.acked)
        wait_acked(app, seen + 5, "app traffic on the unified container")
    finally:
        app.stop()
    assert res.returncode == 0, res.stderr[-4000:]
    # the app wrote between the fingerprint and the stop: taken again from the stopped data
    assert "written to after the fingerprint" in res.stderr, res.stderr[-4000:]
    assert "fingerprint of the shut-down data" in res.stderr
    o = summary(res)
    assert o["result"] == "migrated" and o["step_seconds"]["refingerprint"] > 0
    j = journal(s)
    assert j["fp_next_xid"] == j["shut_next_xid"] > 0
    # no acknowledged write is lost: the split's before the stop, the unified's after health
    acked = {n for n, _ in app.acked}
    assert acked <= names(s, "hl-up"), sorted(acked - names(s, "hl-up"))[:10]


def test_up_without_writes_keeps_its_fingerprint(stack):
    """The guard holds when nothing writes: no second fingerprint, no time spent on it."""
    s = stack
    res = run(up_cmd(s))
    assert res.returncode == 0, res.stderr[-4000:]
    assert "nothing was written after the fingerprint" in res.stderr, res.stderr[-4000:]
    assert "written to after the fingerprint" not in res.stderr
    assert summary(res)["step_seconds"]["refingerprint"] == 0


def test_failed_up_under_app_traffic_rolls_back(stack):
    """The failure comes after the unified API is healthy (HIVE_MIGRATE_FAIL): the snapshot is
    restored and checked while the restarted split app writes again."""
    s = stack
    app = AppTraffic("hl-fail")
    app.start()
    try:
        wait_acked(app, 10, "app traffic on the split stack")
        res = run(up_cmd(s), env=dict(hm_env(), HIVE_MIGRATE_FAIL="after:unified-health"))
        seen = len(app.acked)
        wait_acked(app, seen + 5, "app traffic on the split stack after the rollback")
    finally:
        app.stop()
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-4000:]
    assert "injected failure at after:unified-health" in res.stderr
    assert "differs" not in res.stderr, res.stderr[-4000:]
    j = journal(s)
    assert j["status"] == "rolled-back"
    # every write acknowledged before the stop began is in the restored split stack
    before_stop = {n for n, t in app.acked if t < j["stop_started_at"]}
    assert before_stop and before_stop <= names(s, "hl-fail")
    # and what the unified app took meanwhile is in the kept directory, not deleted
    o = summary(res)
    if any(j["stop_started_at"] <= t for _, t in app.acked):
        assert "displaced_dir" in o and read_pg_state(Path(o["displaced_dir"]) / "pgdata") == "shut down"


def test_live_rollback_under_app_traffic(stack):
    s = stack
    res = run(up_cmd(s))
    assert res.returncode == 0, res.stderr[-4000:]
    app = AppTraffic("hl-rb")
    app.start()
    try:
        wait_acked(app, 10, "app traffic on the unified container")
        rb = run([HM, "rollback", "--stack", s.path, "--profile", "agent", "--json", "--yes",
                  "--health-timeout", "90"])
        seen = len(app.acked)
        wait_acked(app, seen + 5, "app traffic on the split stack after the rollback")
    finally:
        app.stop()
    assert rb.returncode == 0, rb.stderr[-4000:]
    out = json.loads(rb.stdout)["profiles"][0]
    assert out["mode"] == "live" and out["result"] == "rolled-back"
    # the app wrote between the unified fingerprint and the stop: said, not a failure
    assert out["fingerprint_stale"] is True and out["fingerprint_match"] is False
    assert "written to after its fingerprint" in rb.stderr
    acked = {n for n, _ in app.acked}
    assert acked <= names(s, "hl-rb"), sorted(acked - names(s, "hl-rb"))[:10]


def stopped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def test_a_client_outside_the_stack_that_keeps_writing(stack):
    """At the stop and at every start of the split database for a new fingerprint, a client
    writes straight to PostgreSQL: up gives up after 3 attempts and rolls back; the split
    stack runs with every one of those rows (the migration never changed its data)."""
    s = stack
    env = dict(hm_env(), HIVE_MIGRATE_PAUSE="before:stop,before:refingerprint-snapshot")
    proc = subprocess.Popen(up_cmd(s), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    written = []
    try:
        while True:
            wait_until(lambda: stopped(proc.pid) or proc.poll() is not None, 300, what="a pause")
            if proc.poll() is not None:
                break
            with s.connect() as conn:
                name = f"hl-out-{len(written)}"
                conn.execute("INSERT INTO agno.knowledge_base (name, content) VALUES (%s, 'outside')",
                             (name,))
                written.append(name)
            os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_ROLLED_BACK, err[-4000:]
    assert len(written) == 4  # before the stop, then before each of the 3 snapshots
    assert "a client outside the stack writes to it" in err, err[-4000:]
    assert "nothing to compare with" in err
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert set(written) <= names(s, "hl-out")
