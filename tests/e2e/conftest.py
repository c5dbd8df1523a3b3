"""Shared pytest fixtures for hive-migrate's end-to-end tests.

Everything here talks to real components: the hive-migrate binary, podman through the
docker CLI and compose v2, real PostgreSQL and pgvector in containers. Helpers that a test
file needs for itself live in that file or in a module of its own under tests/e2e/.

Host ports: each test file uses its own range below 32768 (hr- 19xxx rollback keeping writes,
hl- 20xxx libpq, hd- 21xxx, hf- 22xxx, hc- 23xxx, hu- 24xxx, hb- 25xxx, hx- 26xxx, hh- 27xxx
hostile input, hs- 28xxx upstream stacks, ho- 29xxx object storage, hj- 30xxx majors, hn- 31xxx
engine), outside Linux's ephemeral range (32768-60999), so that an outgoing
connection that happens to hold the same local port can never make a publish fail.
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


# --- split stack fixtures (fixtures/split; helper module tests/e2e/splitstack.py) ----------
@pytest.fixture(scope="session")
def split_images(engine):
    """localhost/hive-split-postgres:17 and localhost/hive-split-api:latest, built or up to
    date (fixtures/split/build-images.sh is idempotent: context hash label)."""
    from splitstack import ensure_images
    ensure_images(pg=(17,), api=True)


@pytest.fixture(scope="session")
def split_images_18(engine):
    """localhost/hive-split-postgres:18 (forky, PostgreSQL 18) and the API image."""
    from splitstack import ensure_images
    ensure_images(pg=(18,), api=True)


@pytest.fixture
def make_split_stack(split_images, tmp_path):
    """Factory: make_split_stack(name="stack", **SplitStack kwargs) -> a created (not
    started) SplitStack under tmp_path; every stack made is taken down at teardown
    (containers removed, data kept in tmp_path). For pg=18 also request split_images_18."""
    from splitstack import SplitStack
    made = []

    def make(name="stack", **kw):
        s = SplitStack(tmp_path / name, **kw)
        made.append(s)
        return s.create()

    yield make
    for s in made:
        s.down()
