"""Shared pytest fixtures for hive-migrate's end-to-end tests.

Everything here talks to real components: the hive-migrate binary, podman through the
docker CLI and compose v2, real PostgreSQL and pgvector in containers. Helpers that a test
file needs for itself live in that file or in a module of its own under tests/e2e/.
"""
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HM = ROOT / "hive-migrate"
os.environ.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")


def wait_until(predicate, timeout, interval=0.2, what="condition"):
    """Poll predicate() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run(cmd, check=False, **kw):
    """Run a command, capturing text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(c) for c in cmd], check=check, **kw)


def hm(*args, **kw):
    """Run ./hive-migrate with args."""
    return run([HM, *args], **kw)


@pytest.fixture(scope="session")
def engine():
    """The container engine is ready (tests/engine-setup.sh is idempotent)."""
    run([ROOT / "tests" / "engine-setup.sh"], check=True)
    return os.environ["DOCKER_HOST"]
