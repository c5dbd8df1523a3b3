"""The test bed's real S3 server (single-node Ceph + radosgw, tests/objstore/ceph-setup.sh) and
the storage tool (build/tests/hm-storage-tool, `make tools`) that drives backup/storage against it.

Fixtures (import them into a test module: `from s3_helpers import objstore, bucket`):
  objstore  session: the server, reused while it runs (a fresh cluster on each start), its endpoint and keys
  bucket    a fresh bucket "ho-<random>" for one test, emptied and removed afterwards
Host port: 29080 (the ho- range 29000-29999); container ho-ceph.
"""
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, run

SETUP = ROOT / "tests" / "objstore" / "ceph-setup.sh"
TOOL = ROOT / "build" / "tests" / "hm-storage-tool"


@dataclass
class Objstore:
    endpoint: str
    credentials: str   # AWS credentials file (0600) of the test user
    access_key: str
    secret_key: str


def ensure_objstore():
    """Start or reuse the radosgw container; returns an Objstore."""
    r = run([SETUP, "start"], timeout=900)
    assert r.returncode == 0, f"ceph-setup.sh start failed:\n{r.stderr[-3000:]}"
    out = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    keys = {}
    for line in Path(out["credentials"]).read_text().splitlines():
        if "=" in line:
            k, v = (p.strip() for p in line.split("=", 1))
            keys[k] = v
    return Objstore(out["endpoint"], out["credentials"], keys["aws_access_key_id"],
                    keys["aws_secret_access_key"])


def clean_env(home):
    """An environment with no AWS settings and an empty HOME: each test names its source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    return env


class Tool:
    """hm-storage-tool against one location, credentials from the file option by default."""

    def __init__(self, store, location, home, endpoint=None):
        self.store = store
        self.location = location
        self.home = home
        self.endpoint = endpoint or store.endpoint

    def argv(self, cmd, *args, opts=(), creds=True):
        a = [TOOL, "--endpoint", self.endpoint]
        if creds:
            a += ["--credentials-file", self.store.credentials]
        return [*a, *opts, self.location, cmd, *args]

    def __call__(self, cmd, *args, opts=(), creds=True, env=None, input=None, timeout=600, text=True):
        return subprocess.run([str(x) for x in self.argv(cmd, *args, opts=opts, creds=creds)],
                              env=env or clean_env(self.home), input=input, capture_output=True,
                              text=text, timeout=timeout)

    def popen(self, cmd, *args, opts=(), **kw):
        return subprocess.Popen([str(x) for x in self.argv(cmd, *args, opts=opts)], env=clean_env(self.home),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def ok(self, cmd, *args, **kw):
        r = self(cmd, *args, **kw)
        assert r.returncode == 0, f"{cmd} {args}: exit {r.returncode}: {r.stderr}"
        return r

    def partials(self, prefix=""):
        """Incomplete multipart uploads under prefix (ListMultipartUploads), as names."""
        r = self.ok("sweep", *([prefix] if prefix else []), opts=["--dry-run"])
        return [line.split("\t")[0] for line in r.stdout.splitlines() if line]


@pytest.fixture(scope="session")
def objstore():
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is missing: run `make tools` (make e2e does)")
    return ensure_objstore()


@pytest.fixture
def bucket(objstore, tmp_path):
    """(name, Tool for s3://name) on a new bucket; everything in it is removed afterwards."""
    name = f"ho-{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    home.mkdir()
    t = Tool(objstore, f"s3://{name}", home)
    t.ok("mb")
    yield name, t
    t("sweep")                 # abort uploads left by the test
    t("rmdir", "")             # every object in the bucket
    t("rb")


def kill9(p):
    """kill -9 a child and reap it."""
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


class FaultyProxy:
    """A TCP proxy in front of radosgw that misbehaves on chosen connections, to test the
    driver's retries against the real server: the network fails, the server stays real.
    plan[i] says what the i-th accepted connection gets (then "pass" for all later ones):
      "pass"      forwarded both ways
      "503"       the request is read, then "503 SlowDown" and close
      "reset"     closed at once with a TCP reset
      "cut:N"     forwarded, but reset after N bytes of the server's answer
      "cutup:N"   forwarded, but reset after N bytes of the client's request(s)
      "stall"     accepted, then nothing (the client's stall timeout must fire)
    Host ports: 29081 and up.
    """

    def __init__(self, target_port, plan, port=29081, default="pass"):
        import socket
        import threading
        self.plan = list(plan)
        self.default = default
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = port
        self.accepted = 0
        self.closing = False
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        import threading
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            mode = self.plan[self.accepted] if self.accepted < len(self.plan) else self.default
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(c, mode), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _reset(s):
        import socket
        import struct
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            s.close()

    def _serve(self, c, mode):
        import select
        import socket
        if mode == "reset":
            return self._reset(c)
        if mode == "stall":
            try:
                c.settimeout(120)
                while not self.closing and c.recv(65536):
                    pass
            except OSError:
                pass
            return c.close()
        if mode == "503":
            data = b""
            c.settimeout(10)
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nConnection: close\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            return c.close()
        limit = int(mode.split(":")[1]) if mode.startswith("cut:") else None
        uplimit = int(mode.split(":")[1]) if mode.startswith("cutup:") else None
        u = socket.create_connection(self.target)
        sent = up = 0
        try:
            while not self.closing:
                r, _, _ = select.select([c, u], [], [], 1)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is u:
                        if limit is not None and sent + len(data) > limit:
                            c.sendall(data[:limit - sent])
                            self._reset(c)
                            return
                        sent += len(data)
                        c.sendall(data)
                    else:
                        if uplimit is not None and up + len(data) > uplimit:
                            self._reset(c)
                            return
                        up += len(data)
                        u.sendall(data)
        except OSError:
            pass
        finally:
            u.close()
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        import socket
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept(), frees the port
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)
