"""Database access for the reference app: URL handling, a tiny connection pool, schema.

Only python3-psycopg (Debian) is assumed: no psycopg_pool, so a small LIFO pool lives here.
"""
import os
import threading
from pathlib import Path

import psycopg

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
TABLES = ("agno.knowledge_base", "agno.sessions", "agno.memories",
          "hive.component_versions", "hive.version_history", "hive.agent_metrics")


def database_url():
    """HIVE_DATABASE_URL as a libpq URI (accepts postgresql+psycopg:// and postgresql://)."""
    url = os.environ.get("HIVE_DATABASE_URL", "")
    if not url:
        raise RuntimeError("HIVE_DATABASE_URL is not set")
    for prefix in ("postgresql+psycopg://", "postgres+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


class Pool:
    """A small thread-safe LIFO pool of autocommit connections."""

    def __init__(self, conninfo, size=4):
        self.conninfo = conninfo
        self.size = size
        self.idle = []
        self.lock = threading.Lock()

    def _new(self):
        """Open a new connection with short timeouts so callers never hang long."""
        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3,
                               options="-c statement_timeout=30000",
                               keepalives=1, keepalives_idle=10, keepalives_interval=5,
                               keepalives_count=2, application_name="hive_app")

    def get(self, fresh=False):
        """Return an idle connection (or a new one when fresh or none is idle)."""
        if not fresh:
            with self.lock:
                while self.idle:
                    conn = self.idle.pop()
                    if not conn.closed:
                        return conn
        return self._new()

    def put(self, conn):
        """Give a healthy connection back; close it if the pool is full or it broke."""
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        with self.lock:
            if len(self.idle) < self.size:
                self.idle.append(conn)
                return
        conn.close()

    def run(self, fn):
        """Call fn(conn); on a connection error retry once on a fresh connection."""
        for attempt in (0, 1):
            conn = None
            try:
                conn = self.get(fresh=attempt == 1)
                result = fn(conn)
            except psycopg.OperationalError:
                if conn is not None:
                    conn.close()
                if attempt == 1:
                    raise
                continue
            except Exception:
                if conn is not None:
                    conn.close()
                raise
            self.put(conn)
            return result
        raise RuntimeError("unreachable")

    def close(self):
        """Close every idle connection."""
        with self.lock:
            for conn in self.idle:
                conn.close()
            self.idle.clear()


def ensure_schema(conn):
    """Apply schema.sql when any of the hive tables is missing; return True when present."""
    with conn.cursor() as cur:
        cur.execute("SELECT " + ", ".join(f"to_regclass('{t}')" for t in TABLES))
        if all(v is not None for v in cur.fetchone()):
            return True
        cur.execute(SCHEMA_SQL.read_text())
    return True
