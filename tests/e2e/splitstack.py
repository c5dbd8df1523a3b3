"""Drive an old split hive stack (fixtures/split) from tests: create, start, fill, stop.

    from splitstack import SplitStack, ensure_images
    ensure_images(pg=(17,))                      # fixtures/split/build-images.sh 17 api
    s = SplitStack(tmp_path / "stack", profile="agent", name_prefix="hf-",
                   ports={"agent_api": 22886, "agent_pg": 22532})
    s.create(); s.up(); s.fill("5MB", seed=1)
    before = s.fingerprint()
    s.stop()                                     # docker compose stop -t 30
    assert s.pg_state() == "shut down"
    s.down()

Every method that concerns one database takes an optional profile ("agent" / "genie");
the default is the stack's first profile. Real engine, real compose, no mocks.
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
SPLIT = ROOT / "fixtures" / "split"
GENERATE = ROOT / "fixtures" / "generate-data.py"
PUMP = ROOT / "tests" / "health-pump.sh"
PYTHON = "/usr/bin/python3"

# Per profile: database user, database name, default host ports (API, PostgreSQL).
PROFILES = {
    "agent": {"user": "agent", "db": "hive_agent", "api": 38886, "pg": 35532,
              "password_var": "AGENT_DB_PASSWORD"},
    "genie": {"user": "hive", "db": "hive_genie", "api": 48886, "pg": 48532,
              "password_var": "GENIE_DB_PASSWORD"},
}
# DBState of pg_control (src/include/catalog/pg_control.h).
DB_STATES = {0: "starting up", 1: "shut down", 2: "shut down in recovery", 3: "shutting down",
             4: "in crash recovery", 5: "in archive recovery", 6: "in production"}
PORT_VARS = {"agent_api": "HIVE_AGENT_API_PORT", "agent_pg": "HIVE_AGENT_PG_PORT",
             "genie_api": "HIVE_GENIE_API_PORT", "genie_pg": "HIVE_GENIE_PG_PORT"}


def _env():
    """The environment for docker/compose calls: DOCKER_HOST set, and no HIVE_*/COMPOSE_*
    variables from the caller, so the stack's .env alone decides names, ports, profiles."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("HIVE_") or k.startswith("COMPOSE_")
                   or k.endswith("_DB_PASSWORD"))}
    env.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
    return env


def _run(cmd, check=True, timeout=600, env=None, **kw):
    """Run a command; on failure raise with its output."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                         timeout=timeout, env=env if env is not None else _env(), **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {res.returncode}\n"
                           f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-4000:]}")
    return res


def ensure_images(pg=(17,), api=True):
    """Build (or confirm up to date) the split images: localhost/hive-split-postgres:<pg>
    for each major in pg, and localhost/hive-split-api:latest when api. Idempotent."""
    args = [str(p) for p in pg] + (["api"] if api else [])
    if args:
        _run([SPLIT / "build-images.sh", *args], timeout=1800)


def read_pg_state(pgdata):
    """DBState name from PGDATA/global/pg_control (uint32 at offset 16). Read as root (the
    files belong to the container's postgres uid and are 0600)."""
    with open(Path(pgdata) / "global" / "pg_control", "rb") as f:
        head = f.read(20)
    code = struct.unpack_from("<I", head, 16)[0]
    return DB_STATES.get(code, f"unknown ({code})")


class SplitStack:
    """One split stack directory made by fixtures/split/new-stack.sh.

    path: the stack directory (created by create()); profile: "agent", "genie" or "all";
    pg: 17 or 18 (image localhost/hive-split-postgres:<pg>); name_prefix: prepended to the
    container names (dev prefix, e.g. "hf-"); ports: host ports, a dict with any of
    agent_api, agent_pg, genie_api, genie_pg (defaults 38886, 35532, 48886, 48532).
    """

    def __init__(self, path, profile="agent", pg=17, name_prefix="", ports=None):
        self.path = Path(path)
        if profile not in ("agent", "genie", "all"):
            raise ValueError(f"profile must be agent, genie or all, not {profile!r}")
        self.profile = profile
        self.profiles = ["agent", "genie"] if profile == "all" else [profile]
        self.pg = int(pg)
        self.name_prefix = name_prefix
        self.ports = {"agent_api": 38886, "agent_pg": 35532,
                      "genie_api": 48886, "genie_pg": 48532}
        unknown = set(ports or {}) - set(self.ports)
        if unknown:
            raise ValueError(f"unknown port keys {sorted(unknown)}")
        self.ports.update(ports or {})

    # -- helpers ---------------------------------------------------------------------------
    def _p(self, profile):
        """The profile a call is about (default: the stack's first)."""
        p = profile or self.profiles[0]
        if p not in PROFILES:
            raise ValueError(f"unknown profile {p!r}")
        return p

    def compose(self, *args, check=True, timeout=300):
        """Run `docker compose --project-directory STACK ARGS...` (the stack's .env applies)."""
        return _run(["docker", "compose", "--project-directory", self.path, *args],
                    check=check, timeout=timeout, cwd=self.path)

    @property
    def env_file(self):
        """STACK/.env (0600, holds the passwords)."""
        return self.path / ".env"

    def env_values(self):
        """The stack's .env as a dict."""
        out = {}
        for line in self.env_file.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
        return out

    @property
    def project(self):
        """The compose project name (COMPOSE_PROJECT_NAME in .env)."""
        return self.env_values()["COMPOSE_PROJECT_NAME"]

    def container(self, profile=None, role="postgres"):
        """Container name: role "postgres" -> PREFIXhive-postgres-P, "api" -> PREFIXhive-P-api."""
        p = self._p(profile)
        if role == "postgres":
            return f"{self.name_prefix}hive-postgres-{p}"
        if role == "api":
            return f"{self.name_prefix}hive-{p}-api"
        raise ValueError(f"unknown role {role!r}")

    # -- lifecycle -------------------------------------------------------------------------
    def create(self):
        """fixtures/split/new-stack.sh: compose file, .env (random passwords), data dirs."""
        env = _env()
        if self.name_prefix:
            env["HIVE_NAME_PREFIX"] = self.name_prefix
        # A project name unique to this path: two stacks in directories of the same name
        # (tmp_path/"stack" in two tests running at once) must not share a compose project,
        # or one's `down --remove-orphans` removes the other's containers.
        base = re.sub(r"[^a-z0-9_-]+", "-", (self.name_prefix + self.path.name).lower())
        digest = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:8]
        env["COMPOSE_PROJECT_NAME"] = f"{base.strip('-_') or 'hive'}-{digest}"
        for key, var in PORT_VARS.items():
            env[var] = str(self.ports[key])
        _run([SPLIT / "new-stack.sh", self.path, "--profile", self.profile,
              "--pg", str(self.pg)], env=env)
        return self

    def up(self, timeout=120):
        """compose up -d, then wait until every profile's API answers 200 on /api/v1/health
        and its database accepts a connection. compose itself waits for the database's
        healthcheck (depends_on: service_healthy), which tests/health-pump.sh runs."""
        _run([PUMP, "--ensure"], check=False, timeout=30)
        self.compose("up", "-d", timeout=timeout)
        deadline = time.monotonic() + timeout
        for p in self.profiles:
            self._wait(lambda p=p: self.api_healthy(p) and self._db_ok(p), deadline,
                       f"{p} stack healthy")
        return self

    def _wait(self, pred, deadline, what):
        """Poll pred until truthy or the deadline."""
        last = None
        while time.monotonic() < deadline:
            try:
                if pred():
                    return
            except Exception as exc:  # keep polling, report the last error
                last = exc
            time.sleep(0.3)
        logs = {c: _run(["docker", "logs", "--tail", "30", c], check=False).stderr[-1500:]
                for p in self.profiles for c in (self.container(p), self.container(p, "api"))}
        raise AssertionError(f"timed out waiting for {what} (last: {last!r}); logs: {logs}")

    def _db_ok(self, profile):
        """True when a connection and SELECT 1 work."""
        with self.connect(profile) as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1

    def api_health(self, profile=None):
        """(status code, parsed JSON body) of GET /api/v1/health."""
        url = self.api_url(profile) + "/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def api_healthy(self, profile=None):
        """True when the API answers 200."""
        try:
            return self.api_health(profile)[0] == 200
        except (OSError, ValueError):
            return False

    def stop(self, timeout=30):
        """compose stop -t TIMEOUT (never without -t: podman gives compose containers
        StopTimeout 0, i.e. an immediate SIGKILL)."""
        self.compose("stop", "-t", str(timeout), timeout=timeout * 2 + 60)

    def start(self, timeout=120):
        """Start the stopped stack again (same as up())."""
        return self.up(timeout)

    def down(self):
        """compose down (-t 30): remove the containers and network; data dirs stay."""
        if self.env_file.exists():
            self.compose("down", "-t", "30", "--remove-orphans", check=False, timeout=180)
        for p in self.profiles:  # in case compose lost track of them
            for role in ("api", "postgres"):
                name = self.container(p, role)
                _run(["docker", "stop", "-t", "30", name], check=False)
                _run(["docker", "rm", "-f", name], check=False)

    def state(self, profile=None, role="postgres"):
        """Container state (running, exited, ...) or None when it does not exist."""
        res = _run(["docker", "inspect", "-f", "{{.State.Status}}",
                    self.container(profile, role)], check=False)
        return res.stdout.strip() if res.returncode == 0 else None

    # -- database --------------------------------------------------------------------------
    def password(self, profile=None):
        """The database password from the stack's .env."""
        return self.env_values()[PROFILES[self._p(profile)]["password_var"]]

    def user(self, profile=None):
        return PROFILES[self._p(profile)]["user"]

    def dbname(self, profile=None):
        return PROFILES[self._p(profile)]["db"]

    def pg_port(self, profile=None):
        return self.ports[f"{self._p(profile)}_pg"]

    def dsn(self, profile=None):
        """libpq conninfo of the published port, WITHOUT the password (see password())."""
        p = self._p(profile)
        return (f"host=127.0.0.1 port={self.pg_port(p)} user={self.user(p)} "
                f"dbname={self.dbname(p)} connect_timeout=5")

    def connect(self, profile=None, **kw):
        """A psycopg connection (autocommit) to the profile's database."""
        return psycopg.connect(self.dsn(profile), password=self.password(profile),
                               autocommit=True, **kw)

    def api_url(self, profile=None):
        """http://127.0.0.1:PORT of the profile's API."""
        return f"http://127.0.0.1:{self.ports[self._p(profile) + '_api']}"

    def data_dir(self, profile=None):
        """Host path of PGDATA: STACK/data/postgres-P/pgdata."""
        return self.path / "data" / f"postgres-{self._p(profile)}" / "pgdata"

    def mount_dir(self, profile=None):
        """Host dir bind-mounted at /var/lib/postgresql/data: STACK/data/postgres-P."""
        return self.data_dir(profile).parent

    def pg_state(self, profile=None):
        """DBState name from pg_control: "shut down", "in production", ..."""
        return read_pg_state(self.data_dir(profile))

    def pg_version(self, profile=None):
        """PG_VERSION of the data directory ("17")."""
        return (self.data_dir(profile) / "PG_VERSION").read_text().strip()

    def fill(self, size="5MB", seed=1, profile=None, reset=False, timeout=3600):
        """fixtures/generate-data.py into the running database; returns its JSON summary."""
        env = _env()
        env["PGPASSWORD"] = self.password(profile)
        cmd = [PYTHON, GENERATE, "--dsn", self.dsn(profile), "--size", str(size),
               "--seed", str(seed), "--json"] + (["--reset"] if reset else [])
        res = _run(cmd, env=env, timeout=timeout)
        return json.loads(res.stdout)

    def fingerprint(self, profile=None):
        """{table: (row count, md5 over the sorted per-row md5s)} for the six hive
        tables (absent tables: None): equal fingerprints = identical data."""
        out = {}
        with self.connect(profile) as conn:
            for t in ("agno.knowledge_base", "agno.sessions", "agno.memories",
                      "hive.component_versions", "hive.version_history", "hive.agent_metrics"):
                if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None:
                    out[t] = None
                    continue
                # md5 per row, then md5 over the sorted row digests: independent of the
                # physical row order, and small even for a 1 GB table.
                out[t] = tuple(conn.execute(
                    f"SELECT count(*), coalesce(md5(string_agg(x.h, '' ORDER BY x.h)), '') "
                    f"FROM (SELECT md5(t::text) AS h FROM {t} t) x").fetchone())
        return out
