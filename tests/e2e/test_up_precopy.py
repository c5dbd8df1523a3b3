"""hive-migrate up: the pre-copy of the snapshot (issue 13). The data directory is archived
while the split stack runs (the base), only what changed goes into the delta after the
clean stop, and the two parts are merged into the usual single archive once the unified
container is healthy. What users rely on: writes during the pre-copy end up in the snapshot
exactly as the stopped directory held them (every file's SHA-256 compared with the tree
right after the stop); a file rewritten in place with its size and mtime kept is caught; a
kill -9 during the pre-copy, the delta or the merge resumes into a verified snapshot; the
automatic rollback works from base + delta before the merge; the merged archive restores.
Stack prefix hz-, ports 36886 (API) / 36532 (PostgreSQL)."""
import hashlib
import json
import os
import signal
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import HM, wait_until
from migrate_helpers import (EXIT_ROLLED_BACK, TEMPLATES, docker, ensure_unified_image, hm_env,
                             summary)
from splitstack import SplitStack, ensure_images

PREFIX = "hz-"
API_PORT = 36886
PG_PORT = 36532
UNIFIED = "hz-hive-agent-unified"
PROBE = "hz-probe.bin"


def remove_unified():
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_unified_image()
    ensure_images(pg=(17,))
    s = SplitStack(Path(tmp_path_factory.mktemp("hz-pc")) / "hz-stack", profile="agent",
                   name_prefix=PREFIX, ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()
    remove_unified()
    s.create()
    s.up()
    # beside pgdata (archived with it), written long before any pre-copy starts
    probe = s.mount_dir() / PROBE
    probe.write_bytes(b"A" * 8192)
    os.chown(probe, 999, 999)
    s.fill("4MB", seed=13)
    with s.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.hz_writes (id serial PRIMARY KEY, "
                     "n int NOT NULL, pad text NOT NULL)")
    yield s
    remove_unified()
    s.down()


def up_cmd(s, *extra):
    return [str(HM), "up", "--stack", str(s.path), "--profile", "agent", "--yes", "--json",
            "--container-name", UNIFIED, "--templates", str(TEMPLATES), "--health-timeout", "90",
            *extra]


def run_up(s, *extra, timeout=600, **env):
    return subprocess.run(up_cmd(s, *extra), env=dict(hm_env(), **env), capture_output=True,
                          text=True, timeout=timeout)


def rollback(s, *extra):
    return subprocess.run([str(HM), "rollback", "--stack", str(s.path), "--profile", "agent",
                           "--yes", "--json", "--health-timeout", "90", *extra], env=hm_env(),
                          capture_output=True, text=True, timeout=600)


def journal(s):
    return json.loads((s.path / ".hive-migrate" / "journal-agent.json").read_text())


def archives(s):
    d = s.path / ".hive-migrate" / "archives"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def stopped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def tree_sha(root):
    """{relative path: sha256} of every regular file below root."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def archive_sha(path):
    """{relative path: sha256} of every regular file of a snapshot, read by Python's tarfile
    (an independent reader) through the zstd CLI, checked against the archive's own
    manifest (every file, its digest, nothing more, nothing less)."""
    out, manifest = {}, None
    z = subprocess.Popen(["zstd", "-dc", str(path)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=z.stdout, mode="r|") as t:
        for m in t:
            if m.isfile() and m.name.startswith("data/"):
                out[m.name[len("data/"):]] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
            elif m.name == "hive-migrate/manifest.json":
                manifest = json.loads(t.extractfile(m).read())
    assert z.wait() == 0
    assert manifest is not None
    listed = {f["path"]: f["sha256"] for f in manifest["files"] if f["type"] == "file"}
    assert listed == out
    return out


def back_to_split(s, *extra):
    rb = rollback(s, *extra)
    assert rb.returncode == 0, rb.stderr[-3000:]
    displaced = summary(rb).get("displaced_dir")
    if displaced:
        subprocess.run(["rm", "-rf", displaced], check=True)
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")


class Writer(threading.Thread):
    """Inserts and updates in a loop until stopped (autocommit: every one is durable)."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.stop, self.commits, self.error = s, threading.Event(), 0, None

    def run(self):
        try:
            with self.s.connect() as conn:
                while not self.stop.is_set():
                    conn.execute("INSERT INTO public.hz_writes (n, pad) VALUES (%s, repeat('x', 700))",
                                 (self.commits,))
                    conn.execute("UPDATE agno.knowledge_base SET content = content || '.' WHERE ctid = "
                                 "(SELECT ctid FROM agno.knowledge_base LIMIT 1)")
                    self.commits += 1
        except Exception as exc:  # reported by the test
            self.error = exc


def test_writes_during_the_precopy_end_up_exactly_in_the_snapshot(stack):
    s = stack
    env = dict(hm_env(), HIVE_MIGRATE_PRECOPY_THROTTLE_US="3000",
               HIVE_MIGRATE_PAUSE="after:precopy,before:delta")
    proc = subprocess.Popen(up_cmd(s), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    w = Writer(s)
    try:
        wait_until(lambda: any("pre-copy: archiving" in ln for ln in lines) or proc.poll() is not None,
                   120, what="the pre-copy to start")
        w.start()
        # 1st pause: the base is written and verified, the split stack still runs
        wait_until(lambda: stopped(proc.pid) or proc.poll() is not None, 300, what="pause after:precopy")
        assert proc.poll() is None, "".join(lines)[-3000:]
        w.stop.set()
        w.join(30)
        assert w.error is None and w.commits > 5, (w.error, w.commits)
        # the probe: rewritten in place, same size, its mtime put back (only ctime moves)
        probe = s.mount_dir() / PROBE
        st = probe.stat()
        with open(probe, "r+b") as f:
            f.write(b"B" * 8192)
        os.utime(probe, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert probe.stat().st_size == st.st_size and probe.stat().st_mtime_ns == st.st_mtime_ns
        expected = s.fingerprint()
        os.kill(proc.pid, signal.SIGCONT)
        # 2nd pause: the split stack is stopped, the delta not yet taken
        wait_until(lambda: stopped(proc.pid) or proc.poll() is not None, 300, what="pause before:delta")
        assert proc.poll() is None, "".join(lines)[-3000:]
        assert s.pg_state() == "shut down"
        at_stop = tree_sha(s.mount_dir())
        os.kill(proc.pid, signal.SIGCONT)
        out = proc.stdout.read()      # stderr is the reader thread's
        proc.wait(timeout=600)
    finally:
        w.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 0, err[-3000:]
    o = json.loads(out)["profiles"][0]
    assert o["result"] == "migrated" and o["precopy"] == "merged"
    st = o["step_seconds"]
    assert st["precopy"] > 0 and st["delta"] > 0 and st["merge"] > 0
    assert "files reused" in err and "the snapshot is one verified archive again" in err
    assert s.fingerprint() == expected      # the fingerprint of step 2 included every write
    # one archive; no part left; it holds exactly the stopped directory, file by file
    assert archives(s) == [Path(o["archive"]).name], archives(s)
    snap = archive_sha(o["archive"])
    assert snap == at_stop
    assert snap[PROBE] == hashlib.sha256(b"B" * 8192).hexdigest()
    # (d) the merged archive restores: the data as it was at the stop
    back_to_split(s, "--to-snapshot", "--no-safety-snapshot")
    assert s.fingerprint() == expected


def test_kill9_in_precopy_delta_and_merge_resumes(stack):
    s = stack
    before = s.fingerprint()
    earlier = set(archives(s))    # the snapshots of earlier tests stay (never deleted)
    for fault in ("during:precopy", "during:delta", "during:merge"):
        res = run_up(s, HIVE_MIGRATE_FAULT=fault, HIVE_MIGRATE_PRECOPY_THROTTLE_US="200")
        assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
        assert f"SIGKILL at {fault}" in res.stderr
        j = journal(s)
        assert j["status"] == "in-progress"
        assert j["precopy"] == {"during:precopy": "", "during:delta": "base",
                                "during:merge": "delta"}[fault], j
    assert journal(s)["step"] == "verified"
    res = run_up(s)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "merging the pre-copy" in res.stderr
    j = journal(s)
    assert j["status"] == "done" and j["precopy"] == "merged"
    # one new archive: the killed pre-copy's base and every part went
    assert set(archives(s)) - earlier == {Path(j["archive"]).name}, archives(s)
    assert len(archive_sha(j["archive"])) > 100     # the snapshot verifies, file by file
    assert s.fingerprint() == before
    back_to_split(s)    # live
    assert s.fingerprint() == before


def test_automatic_rollback_at_step_7_works_from_base_and_delta(stack):
    s = stack
    before = s.fingerprint()
    res = run_up(s, HIVE_MIGRATE_FAIL="before:start-snapshot")
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-3000:]
    assert "the snapshot is still in two parts" in res.stderr, res.stderr[-3000:]
    assert "merging the pre-copy" in res.stderr
    j = journal(s)
    assert j["status"] == "rolled-back" and j["precopy"] == "merged"
    wait_until(s.api_healthy, 90, what="split API healthy after the rollback")
    assert s.fingerprint() == before


def test_no_precopy_and_the_dry_run(stack):
    s = stack
    plan = run_up(s, "--dry-run")
    assert plan.returncode == 0 and "pre-copy" in plan.stdout, plan.stdout
    plan = run_up(s, "--dry-run", "--no-precopy")
    assert plan.returncode == 0 and "pre-copy" not in plan.stdout, plan.stdout
