"""Drive a stack laid out as upstream automagik-hive's (fixtures/upstream) from tests.

    from upstreamstack import UpstreamStack, owners, assert_owners_kept
    s = UpstreamStack(tmp / "my hive", variant="templates", prefix="hs-a-",
                      pg_port=28532, api_port=28886)
    s.create(); s.up(); s.fill("2MB", seed=5)
    before = s.fingerprint(); s.stop(); s.down()

A SplitStack (tests/e2e/splitstack.py) whose compose project is named by its compose file
(STACK/docker/templates/agent.yml, or STACK/docker/agent/docker-compose.yml for the
agent-api variant) and optionally a project name, not by a directory with a
docker-compose.yml; credentials are upstream's defaults (agent/agent, test_user/test_pass).
"""
import json
import os
from pathlib import Path

from splitstack import ROOT, SplitStack, _run

UPSTREAM = ROOT / "fixtures" / "upstream"
VARIANTS = {
    # variant: compose file in the stack, (database, API) container names, user, password
    "templates": ("docker/templates/agent.yml", ("hive-postgres-agent", "hive-agents-agent"),
                  "agent", "agent"),
    "agent-api": ("docker/agent/docker-compose.yml", ("hive-agent-postgres", "hive-agent-api"),
                  "test_user", "test_pass"),
}


def owners(root):
    """{relative path: (uid, gid)} of every entry below root (root itself as ".")."""
    root = Path(root)
    out = {".": (root.lstat().st_uid, root.lstat().st_gid)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_uid, st.st_gid)
    return out


def assert_owners_kept(before, after):
    """Every entry present before and after has the owner it had; no new owner appeared.
    (A running server adds and removes a few files, e.g. postmaster.pid.)"""
    common = before.keys() & after.keys()
    assert len(common) > 100, f"only {len(common)} entries in common"
    changed = {p: (before[p], after[p]) for p in sorted(common) if before[p] != after[p]}
    assert not changed, f"owners changed: {dict(list(changed.items())[:10])}"
    assert set(after.values()) == set(before.values())


class UpstreamStack(SplitStack):
    """One upstream-layout stack made by fixtures/upstream/new-stack.sh."""

    def __init__(self, path, variant="templates", prefix="hs-", pg_port=28532, api_port=28886,
                 project_name=None, volume=False, uid=None):
        super().__init__(path, profile="agent", name_prefix=prefix,
                         ports={"agent_api": api_port, "agent_pg": pg_port})
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        self.variant = variant
        self.rel, self.names, self._user, self._password = VARIANTS[variant]
        self.project_name = project_name
        self.volume = volume
        self.uid = uid
        self.compose_file = self.path / self.rel

    # -- what differs from fixtures/split ----------------------------------------------------
    def create(self):
        args = [UPSTREAM / "new-stack.sh", self.path, "--variant", self.variant,
                "--name-prefix", self.name_prefix, "--pg-port", self.ports["agent_pg"],
                "--api-port", self.ports["agent_api"]]
        if self.volume:
            args.append("--volume")
        if self.uid is not None:
            args += ["--uid", self.uid]
        self.path.mkdir(parents=True, exist_ok=True)
        _run(args)
        return self

    def compose_args(self):
        """The compose options naming this project (for docker compose and hive-migrate)."""
        return ["-f", str(self.compose_file)] + (
            ["-p", self.project_name] if self.project_name else [])

    def compose(self, *args, check=True, timeout=300):
        return _run(["docker", "compose", *self.compose_args(), *args], check=check,
                    timeout=timeout, cwd=self.path)

    def container(self, profile=None, role="postgres"):
        return self.name_prefix + self.names[0 if role == "postgres" else 1]

    def password(self, profile=None):
        return self._password

    def user(self, profile=None):
        return self._user

    def dbname(self, profile=None):
        return "hive_agent"

    @property
    def volume_name(self):
        return f"{self.name_prefix}hive_agent_pgdata"

    def mount_dir(self, profile=None):
        """The host directory holding pgdata/: the bind mount, or the volume's Mountpoint."""
        if not self.volume:
            return self.path / "data" / "postgres-agent"
        res = _run(["docker", "volume", "inspect", "--format", "{{json .}}", self.volume_name])
        info = json.loads(res.stdout)
        return Path((info[0] if isinstance(info, list) else info)["Mountpoint"])

    def data_dir(self, profile=None):
        return self.mount_dir() / "pgdata"

    def down(self, volumes=False):
        """compose down -t 30 (and the named volumes with volumes=True), then by name."""
        if self.compose_file.exists():
            self.compose("down", "-t", "30", "--remove-orphans", *(["-v"] if volumes else []),
                         check=False, timeout=180)
        self.remove_leftovers(volumes=volumes)

    def remove_leftovers(self, volumes=False):
        """Containers, network (and volumes) of this prefix left by an aborted earlier run."""
        for name in self.names:
            _run(["docker", "stop", "-t", "30", self.name_prefix + name], check=False)
            _run(["docker", "rm", "-f", self.name_prefix + name], check=False)
        _run(["docker", "network", "rm", f"{self.name_prefix}hive_agent_network"], check=False)
        if volumes:
            for v in ("hive_agent_logs", "hive_agent_data", "hive_agent_app_logs",
                      "hive_agent_app_data", "hive_agent_pgdata"):
                _run(["docker", "volume", "rm", "-f", self.name_prefix + v], check=False)
