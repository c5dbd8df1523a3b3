"""Helpers for tests/e2e/test_up.py and test_rollback.py: a filled split stack under the
"hu-" prefix on ports 24886 (API) / 24532 (PostgreSQL), and runs of `hive-migrate up` /
`rollback` against it with the unified container named hu-hive-agent-unified."""
import json
import os
import subprocess
import tempfile
from pathlib import Path

from conftest import HM, ROOT, run, wait_until
from splitstack import SplitStack, ensure_images

PREFIX = "hu-"
API_PORT = 24886
PG_PORT = 24532
UNIFIED = "hu-hive-agent-unified"
IMAGE = "localhost/hive-unified:17"
BROKEN_IMAGE = "localhost/hive-unified:broken"
TEMPLATES = ROOT / "docker" / "templates"

# exit codes (common/exitcode.h)
EXIT_DATABASE = 32
EXIT_LOCKED = 33
EXIT_ROLLED_BACK = 35
EXIT_PREFLIGHT = 37
EXIT_VERIFY_FAILED = 40


def docker(*args, check=False, **kw):
    return run(["docker", *args], check=check, **kw)


def ensure_unified_image():
    """docker/build-image.sh is idempotent (skips an up-to-date image)."""
    run([ROOT / "docker" / "build-image.sh"], check=True, timeout=1800)


def ensure_broken_image():
    """localhost/hive-unified:broken: the unified image with the API replaced by a module
    that exits at import, so the container never becomes healthy."""
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(
            f"FROM {IMAGE}\n"
            # never look like the real image to docker/build-image.sh's label search
            "LABEL org.hive.context-hash=\"\" org.hive.derived=\"tests/e2e broken API\"\n"
            "USER root\n"
            "RUN rm -rf /opt/hive/app/hive_app && mkdir -p /opt/hive/app/hive_app && "
            "touch /opt/hive/app/hive_app/__init__.py && "
            "echo 'raise SystemExit(\"broken on purpose by tests/e2e\")' > /opt/hive/app/hive_app/main.py\n"
            "USER 1000:1000\n")
        run(["podman", "build", "--pull=false", "-q", "-t", BROKEN_IMAGE, ctx], check=True, timeout=600)


def new_stack(tmp, fill="2MB"):
    """A created, started and filled agent split stack (prefix hu-, ports 24886/24532). The
    directory is named hu-stack so that its compose project ("hu-stack") never collides
    with another test's stack (a project named after a plain "stack" directory would)."""
    ensure_images(pg=(17,))
    s = SplitStack(Path(tmp) / "hu-stack", profile="agent", name_prefix=PREFIX,
                   ports={"agent_api": API_PORT, "agent_pg": PG_PORT})
    s.down()  # leftovers of an aborted earlier run under the same names
    remove_unified()
    s.create()
    s.up()
    s.fill(fill, seed=7)
    return s


def remove_unified():
    """Stop (cleanly, -t 30) and remove the test's unified container, if any."""
    docker("stop", "-t", "30", UNIFIED)
    docker("rm", "-f", UNIFIED)


def hm_env(fault=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIVE_MIGRATE_FAULT")}
    if fault:
        env["HIVE_MIGRATE_FAULT"] = fault
    return env


def up(stack, *extra, fault=None, timeout=600):
    """hive-migrate up on the test stack; returns the CompletedProcess (json summary on stdout)."""
    return run([HM, "up", "--stack", stack.path, "--profile", "agent", "--yes", "--json",
                "--container-name", UNIFIED, "--templates", TEMPLATES,
                "--health-timeout", "60", *extra], env=hm_env(fault), timeout=timeout)


def hm_run(*args, timeout=600):
    """hive-migrate with arbitrary arguments (no fault injection)."""
    return run([HM, *args], env=hm_env(), timeout=timeout)


def rollback(stack, *extra, fault=None, timeout=600):
    return run([HM, "rollback", "--stack", stack.path, "--profile", "agent", "--yes", "--json",
                "--health-timeout", "60", *extra], env=hm_env(fault), timeout=timeout)


def summary(res):
    """The first profile's JSON summary of an up/rollback run."""
    return json.loads(res.stdout)["profiles"][0]


def journal(stack):
    p = stack.path / ".hive-migrate" / "journal-agent.json"
    return json.loads(p.read_text()) if p.exists() else None


def container_state(name):
    r = docker("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else None


def unified_healthy():
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{API_PORT}/api/v1/health", timeout=3) as r:
            return r.status == 200 and json.loads(r.read())["status"] == "healthy"
    except Exception:
        return False


def assert_split_back(stack, before):
    """The split stack runs, is healthy, holds exactly the data it had, and no unified
    container is left."""
    assert stack.state(role="postgres") == "running"
    assert stack.state(role="api") == "running"
    wait_until(stack.api_healthy, 60, what="split API healthy")
    assert stack.fingerprint() == before
    assert container_state(UNIFIED) is None
    owner = os.stat(stack.data_dir()).st_uid
    assert owner == 999, f"pgdata owned by {owner}, not the split image's 999"


def describe(res):
    return f"rc={res.returncode}\nstdout={res.stdout[-3000:]}\nstderr={res.stderr[-5000:]}"
