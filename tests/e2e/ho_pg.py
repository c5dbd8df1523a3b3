"""A small real PostgreSQL 15 of the host (Debian's postgresql-15) for the object-storage and
encryption tests (ho- range): initdb'd as the postgres user in a directory of its own under
/tmp, Unix socket only, trust for postgres (replication included). Quick to start, so the S3
and encryption tests need no container stack; test_backup.py covers the unified container.

Cluster(port).start() / .stop() / .query(sql) / .seed(random_mb); restored copies are
restored into Cluster.blank(port).data on their own port and socket.
"""
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import psycopg

from conftest import run, wait_until

PGBIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*cmd, **kw):
    return run(["runuser", "-u", "postgres", "--", *cmd], **kw)


def available():
    return (PGBIN / "initdb").exists() and os.geteuid() == 0


class Cluster:
    def __init__(self, base, data, port):
        self.base, self.data, self.port = Path(base), Path(data), port
        self.sock = self.base / f"sock-{port}"

    @classmethod
    def create(cls, port, prefix="ho-pg-"):
        base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        pg = pwd.getpwnam("postgres")
        os.chown(base, pg.pw_uid, pg.pw_gid)
        c = cls(base, base / "data", port)
        r = as_postgres(PGBIN / "initdb", "-D", c.data, "-U", "postgres", "--auth-local=trust",
                        "--auth-host=reject", "-E", "UTF8", "--locale=C")
        assert r.returncode == 0, r.stderr
        (c.data / "pg_hba.conf").write_text("local all postgres trust\nlocal replication postgres trust\n")
        return c

    @classmethod
    def blank(cls, port):
        """A place for a restored cluster: .data does not exist yet (restore --to it)."""
        base = Path(tempfile.mkdtemp(prefix="ho-pgr-", dir="/tmp"))
        pg = pwd.getpwnam("postgres")
        os.chown(base, pg.pw_uid, pg.pw_gid)
        return cls(base, base / "data", port)

    def start(self):
        pg = pwd.getpwnam("postgres")
        self.sock.mkdir(exist_ok=True)
        os.chown(self.sock, pg.pw_uid, pg.pw_gid)
        log = self.base / f"server-{self.port}.log"
        opts = f"-c listen_addresses='' -c unix_socket_directories={self.sock} -c port={self.port}"
        r = as_postgres(PGBIN / "pg_ctl", "-D", self.data, "-l", log, "-o", opts, "-w", "-t", "60", "start")
        assert r.returncode == 0, (r.stdout, r.stderr, log.read_text() if log.exists() else "")
        wait_until(lambda: self.query("SELECT NOT pg_is_in_recovery()") == [(True,)], 60,
                   what=f"PostgreSQL on port {self.port}")
        return self

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            as_postgres(PGBIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def query(self, sql, db="postgres"):
        with psycopg.connect(host=str(self.sock), port=self.port, user="postgres", dbname=db,
                             autocommit=True, connect_timeout=5) as c:
            cur = c.execute(sql)
            return cur.fetchall() if cur.description else None

    def seed(self, random_mb=0):
        """A table of known rows, plus random_mb MB of incompressible bytes (so that an
        archive spans several S3 parts)."""
        self.query("CREATE TABLE items (id int PRIMARY KEY, payload text NOT NULL)")
        self.query("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        if random_mb:
            rows = random_mb * 1024 * 1024 // 512
            self.query("CREATE TABLE blobs AS SELECT g, decode(string_agg(md5(random()::text || g || i), ''), "
                       f"'hex') AS b FROM generate_series(1, {rows}) g, generate_series(1, 32) i GROUP BY g")
            self.query("ALTER TABLE blobs ALTER b SET STORAGE EXTERNAL")
        self.query("CHECKPOINT")

    def digest(self):
        return self.query("SELECT count(*), md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) "
                          "FROM items")[0]

    def backup_args(self):
        return ["--host", str(self.sock), "--port", str(self.port), "--user", "postgres"]
