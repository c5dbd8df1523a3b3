"""Helpers for tests/e2e/test_unified.py: the unified container (docker/) on a real engine."""
import json
import os
import struct
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from conftest import ROOT, run, wait_until

IMAGE = "localhost/hive-unified:17"
DOCKER = ROOT / "docker"
PASSWORD = "Unified-pw-7f3a!"        # must never appear in logs
BACKUP_PASSWORD = "Backup-pw-91c2?"
PG_STATES = {0: "starting up", 1: "shut down", 2: "shut down in recovery", 3: "shutting down",
             4: "in crash recovery", 5: "in archive recovery", 6: "in production"}


def build_image():
    """docker/build-image.sh (idempotent); returns its stderr."""
    r = run([DOCKER / "build-image.sh"], check=True)
    return r.stderr


def http(port, method, path, body=None, timeout=5):
    """(status, parsed JSON body) of an HTTP request to the API on 127.0.0.1:port."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def healthy(port):
    """True when the API health endpoint answers 200 healthy."""
    try:
        status, body = http(port, "GET", "/api/v1/health", timeout=3)
    except OSError:
        return False
    return status == 200 and body.get("status") == "healthy"


def wait_healthy(port, name, timeout=90):
    """Wait until the API on port is healthy; returns seconds waited."""
    import time
    t0 = time.monotonic()
    wait_until(lambda: healthy(port), timeout, what=f"{name} healthy on port {port}")
    return time.monotonic() - t0


def docker(*args, check=False, **kw):
    """Run the docker CLI (talks to podman through DOCKER_HOST)."""
    return run(["docker", *args], check=check, **kw)


def logs(name):
    """stdout+stderr of docker logs NAME."""
    r = docker("logs", name)
    return r.stdout + r.stderr


def dexec(name, *cmd, check=True, **kw):
    """docker exec NAME cmd..."""
    return docker("exec", name, *cmd, check=check, **kw)


def psql(name, user, db, sql, check=True):
    """psql over the container's unix socket (trust); returns stripped stdout."""
    r = dexec(name, "psql", "-X", "-qAt", "-h", "/var/run/postgresql", "-U", user, "-d", db,
              "-v", "ON_ERROR_STOP=1", "-c", sql, check=check)
    return r.stdout.strip()


def compose(file, project, env, *args, check=True):
    """docker compose -f FILE -p PROJECT ARGS with extra env."""
    e = dict(os.environ, **env)
    return run(["docker", "compose", "-f", file, "-p", project, *args], check=check, env=e)


def pg_state(pgdata):
    """DBState of global/pg_control (uint32 at offset 16; postgres-facts.md)."""
    raw = Path(pgdata, "global", "pg_control").read_bytes()
    return PG_STATES.get(struct.unpack_from("<I", raw, 16)[0], "unknown")


def system_identifier(pgdata):
    """system_identifier (uint64 at offset 0) of pg_control."""
    return struct.unpack_from("<Q", Path(pgdata, "global", "pg_control").read_bytes(), 0)[0]


def make_data_dir(path, uid=1000, gid=1000):
    """A host folder for bind-mounting at /var/lib/postgresql/data, owned by uid:gid."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    return path


def chown_r(path, uid, gid):
    """chown -R (what hive-migrate up does when moving a split dir from 999 to 1000)."""
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(path)], check=True)


def rm_containers(*names):
    """Force-remove containers (teardown)."""
    for n in names:
        docker("rm", "-f", n)
