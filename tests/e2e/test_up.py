"""hive-migrate up against real split stacks and the real unified container: the happy
path, every refusal that must leave the split stack untouched, failures that must roll back
automatically, and kill -9 at each step (HIVE_MIGRATE_FAULT) followed by a rerun."""
import fcntl
import os
import socket
import subprocess

import pytest

from conftest import wait_until
from migrate_helpers import (API_PORT, BROKEN_IMAGE, EXIT_DATABASE, EXIT_LOCKED, EXIT_PREFLIGHT,
                             EXIT_ROLLED_BACK, UNIFIED, assert_split_back, container_state, describe,
                             ensure_broken_image, ensure_unified_image, journal, new_stack, remove_unified,
                             rollback, summary, unified_healthy, up)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_unified_image()
    s = new_stack(tmp_path_factory.mktemp("hu-up"))
    s.before = s.fingerprint()
    assert s.before["agno.knowledge_base"][0] > 0
    yield s
    remove_unified()
    s.down()


@pytest.fixture
def split_running(stack):
    """Each test starts from a healthy split stack with the original data."""
    assert stack.api_healthy()
    yield stack
    if container_state(UNIFIED) is not None or not stack.api_healthy():
        j = journal(stack)
        if j and j["status"] not in ("rolled-back",):
            rollback(stack)
        remove_unified()
        if not stack.api_healthy():
            stack.start()


def test_dry_run_changes_nothing(split_running):
    s = split_running
    res = up(s, "--dry-run")
    assert res.returncode == 0, describe(res)
    assert "dry run" in res.stdout
    assert "hu-hive-agent-unified" in res.stdout
    assert journal(s) is None
    assert s.state(role="postgres") == "running"
    assert container_state(UNIFIED) is None


def test_up_migrates_every_row(split_running, tmp_path):
    s = split_running
    pwfile = tmp_path / "backup-password"
    pwfile.write_text("Backup-pw-hu-42\n")
    os.chmod(pwfile, 0o600)  # up refuses a password file others can read
    res = up(s, "--backup-password-file", pwfile)
    assert res.returncode == 0, describe(res)
    out = summary(res)
    assert out["result"] == "migrated"
    assert out["downtime_seconds"] > 0
    assert os.path.exists(out["archive"])
    assert oct(os.stat(out["archive"]).st_mode & 0o777) == "0o600"
    # the split stack is stopped cleanly, the unified container serves the same data
    assert s.state(role="postgres") == "exited"
    assert container_state(UNIFIED) == "running"
    assert unified_healthy()
    assert s.fingerprint() == s.before          # same port 24532, now the unified container
    assert os.stat(s.data_dir()).st_uid == 1000
    j = journal(s)
    assert j["status"] == "done" and j["step"] == "done"
    env = s.path / ".hive-migrate" / "unified-agent.env"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert s.password() not in res.stdout + res.stderr   # the secrets are never printed
    assert "Backup-pw-hu-42" not in res.stdout + res.stderr
    # the unified container created the backup role from the env file
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 port={s.pg_port()} user=hive_backup dbname={s.dbname()}",
                         password="Backup-pw-hu-42") as conn:
        assert conn.execute("SELECT rolreplication FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    st = out["step_seconds"]
    assert st["snapshot"] > 0 and st["health"] > 0 and st["fingerprint"] > 0
    # a second up is a no-op
    again = up(s)
    assert again.returncode == 0, describe(again)
    # and rollback --to-snapshot brings the split stack back with identical data
    rb = rollback(s, "--to-snapshot")
    assert rb.returncode == 0, describe(rb)
    assert_split_back(s, s.before)
    displaced = summary(rb)["displaced_dir"]
    assert displaced and os.path.isdir(displaced)   # kept: it may hold post-migration writes
    subprocess.run(["rm", "-rf", displaced], check=True)


def test_unified_image_missing_refused(split_running):
    s = split_running
    res = up(s, "--image", "localhost/hive-unified:does-not-exist")
    assert res.returncode == EXIT_PREFLIGHT, describe(res)
    assert "does not exist" in res.stderr and "build-image.sh" in res.stderr
    assert_split_back(s, s.before)


def test_api_port_taken_refused(split_running):
    s = split_running
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        res = up(s, "--api-port", str(port))
    assert res.returncode == EXIT_PREFLIGHT, describe(res)
    assert f"port {port}" in res.stderr
    assert_split_back(s, s.before)


def test_wrong_credentials_refused(split_running):
    s = split_running
    env_file = s.env_file
    original = env_file.read_text()
    try:
        env_file.write_text(original.replace(s.password(), "wrong" + s.password()[5:]))
        res = up(s)
    finally:
        env_file.write_text(original)
    assert res.returncode in (EXIT_PREFLIGHT, EXIT_DATABASE), describe(res)
    assert "password" in res.stderr or "authentication" in res.stderr
    assert "wrong" not in res.stderr                  # the (wrong) password is not echoed
    assert_split_back(s, s.before)


def test_incompatible_major_refused(engine, tmp_path):
    """A PostgreSQL 18 split stack cannot move onto the 17 unified image: refused by the
    preflight with what to do, the stack untouched (own names/ports: hu-pg18-, 24887/24533)."""
    from splitstack import SplitStack, ensure_images
    from migrate_helpers import TEMPLATES, hm_run
    ensure_images(pg=(18,))
    s18 = SplitStack(tmp_path / "hu-pg18-stack", profile="agent", pg=18, name_prefix="hu-pg18-",
                     ports={"agent_api": 24887, "agent_pg": 24533})
    s18.down()
    try:
        s18.create()
        s18.up()
        res = hm_run("up", "--stack", s18.path, "--yes", "--container-name", "hu-pg18-unified",
                     "--templates", TEMPLATES)
        assert res.returncode == EXIT_PREFLIGHT, describe(res)
        assert "18" in res.stderr and "hint:" in res.stderr
        assert s18.state(role="postgres") == "running"
        assert s18.api_healthy()
        assert not (s18.path / ".hive-migrate" / "journal-agent.json").exists()
    finally:
        s18.down()


def test_lock_stops_a_second_run(split_running):
    s = split_running
    state = s.path / ".hive-migrate"
    state.mkdir(mode=0o700, exist_ok=True)
    with open(state / "lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        res = up(s)
    assert res.returncode == EXIT_LOCKED, describe(res)
    assert_split_back(s, s.before)


def test_never_healthy_rolls_back(split_running):
    s = split_running
    ensure_broken_image()
    res = up(s, "--image", BROKEN_IMAGE, "--health-timeout", "15")
    assert res.returncode == EXIT_ROLLED_BACK, describe(res)
    assert "did not become healthy" in res.stderr
    assert summary(res)["result"] == "rolled-back"
    assert journal(s)["status"] == "rolled-back"
    assert_split_back(s, s.before)


def test_disk_full_during_snapshot_rolls_back(split_running, tmp_path):
    s = split_running
    # incompressible bytes next to pgdata make the archive larger than the small file
    # system, while preflight (which sizes pgdata) still lets the run start
    junk = s.mount_dir() / "incompressible.bin"
    junk.write_bytes(os.urandom(40 << 20))
    os.chown(junk, 999, 999)
    mnt = tmp_path / "small"
    mnt.mkdir()
    pgdata_bytes = sum(f.stat().st_size for f in s.data_dir().rglob("*") if f.is_file())
    size_kb = pgdata_bytes // 4 // 1024 + 4096
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", mnt], check=True)
    try:
        res = up(s, "--archive-dir", str(mnt / "archives"))
        leftovers = list((mnt / "archives").glob("*")) if (mnt / "archives").exists() else []
    finally:
        subprocess.run(["umount", mnt], check=False)
        junk.unlink()
    assert res.returncode == EXIT_ROLLED_BACK, describe(res)
    assert "No space left on device" in res.stderr
    assert leftovers == []                      # no partial archive left behind
    assert_split_back(s, s.before)


FAULTS = ["after:fingerprint", "after:stop", "during:snapshot-verify", "after:snapshot", "during:chown",
          "after:chown", "after:unified-start", "after:verify"]


@pytest.mark.parametrize("fault", FAULTS)
def test_kill9_then_rerun_is_consistent(split_running, fault):
    s = split_running
    res = up(s, fault=fault)
    assert res.returncode == -9, describe(res)
    assert f"SIGKILL at {fault}" in res.stderr
    assert journal(s)["status"] == "in-progress"
    again = up(s)
    assert again.returncode == 0, describe(again)
    wait_until(unified_healthy, 30, what="unified healthy")
    assert s.fingerprint() == s.before
    rb = rollback(s)
    assert rb.returncode == 0, describe(rb)
    assert_split_back(s, s.before)
    displaced = summary(rb)["displaced_dir"]
    if displaced:
        subprocess.run(["rm", "-rf", displaced], check=True)
