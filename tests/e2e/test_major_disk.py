"""Disk full during `up` across PostgreSQL majors (15 -> 17), for real: the stack lives on a
tmpfs sized so that the preflight passes, its state directory (STACK/.hive-migrate, where
the dump goes) on a second one, and the test fills one of them while up is held at a step
(HIVE_MIGRATE_PAUSE: SIGSTOP there, SIGCONT from the test): the state file system during
the dump, the data's (where the new cluster is built) during the restore. The dump or the
restore then hits "No space left on device"; up must roll back by itself (freeing the dump
and the new cluster) and the split stack must come back on PostgreSQL 15 with its data."""
import os
import signal
import subprocess

import pytest

from conftest import HM, wait_until
from major_helpers import (EXIT_ROLLED_BACK, PREFIX, all_fingerprint, assert_split_back, new_stack,
                           remove_unified)


def du(path):
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    mnt = tmp_path_factory.mktemp("hj-disk")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g,mode=0755", "tmpfs", str(mnt)], check=True)
    s = None
    try:
        s = new_stack(mnt, name="hj-disk", fill="1MB")
        s.before = all_fingerprint(s)
        data = du(s.mount_dir())
        used = du(mnt)
        # room for the preflight's 2x (dump + new cluster) and the snapshot, not much more
        size = used + int(2.6 * data)
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)
        state = s.path / ".hive-migrate"
        state.mkdir(mode=0o700, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m,mode=0700", "tmpfs", str(state)],
                       check=True)
        s.mnt = {"data": mnt, "state": state}
        yield s
    finally:
        remove_unified()
        if s is not None:
            s.down()
            subprocess.run(["umount", "-l", str(s.path / ".hive-migrate")], check=False)
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def stopped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def fill_disk(mnt, leave=256 * 1024):
    """A ballast file taking all but `leave` bytes of the file system."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    ballast = mnt / "ballast"
    with open(ballast, "wb") as f:
        left = max(free - leave, 0)
        chunk = b"\0" * (1 << 20)
        while left > 0:
            n = min(left, len(chunk))
            try:
                f.write(chunk[:n])
            except OSError:
                break
            left -= n
    return ballast


@pytest.mark.parametrize("point,fs", [("major:during:dump", "state"), ("major:after:init", "data")])
def test_disk_full_rolls_back(stack, point, fs):
    env = dict(os.environ, HIVE_MIGRATE_PAUSE=point)
    env.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
    proc = subprocess.Popen([str(HM), "up", "--stack", str(stack.path), "--profile", "agent",
                             "--name-prefix", PREFIX, "--yes", "--health-timeout", "180"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ballast = None
    try:
        wait_until(lambda: stopped(proc.pid) or proc.poll() is not None, 600, what=f"pause at {point}")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        ballast = fill_disk(stack.mnt[fs])
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if ballast is not None and ballast.exists():
            ballast.unlink()
    assert proc.returncode == EXIT_ROLLED_BACK, err[-4000:]
    assert "No space left on device" in err or "could not extend file" in err, err[-3000:]
    assert_split_back(stack, stack.before)
    assert not (stack.path / ".hive-migrate" / "dump-agent").exists()
