#!/usr/bin/env python3
"""Database setup of the unified container, over the unix socket (trust) as the superuser.

  dbsetup.py init    new data directory: app role (LOGIN, not superuser) with HIVE_DB_PASSWORD,
                     database HIVE_DB_NAME owned by it, CREATE EXTENSION vector in it, backup role.
  dbsetup.py start   every start: CREATE EXTENSION IF NOT EXISTS vector in HIVE_DB_NAME (if the
                     database exists) and create/update hive_backup (LOGIN REPLICATION) when
                     HIVE_BACKUP_PASSWORD is set.

Passwords are sent as SCRAM-SHA-256 verifiers computed here, so the plain text never reaches
the server, its logs or a command line.
"""
import base64
import hashlib
import hmac
import os
import sys
import unicodedata

import psycopg
from psycopg import sql

BACKUP_ROLE = "hive_backup"


def scram_verifier(password, iterations=4096):
    """SCRAM-SHA-256 verifier in PostgreSQL's format (RFC 5802/7677; NFKC stands in for SASLprep)."""
    norm = unicodedata.normalize("NFKC", password).encode()
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", norm, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def connect(user, dbname):
    """Connect over the socket in PGHOST (trust)."""
    return psycopg.connect(host=os.environ.get("PGHOST", "/var/run/postgresql"),
                           port=os.environ.get("PGPORT", "5432"), user=user, dbname=dbname,
                           autocommit=True, connect_timeout=10)


def superuser_conn(dbname="postgres"):
    """A superuser connection: whichever candidate role connects, then the bootstrap superuser
    (the role with oid 10: postgres here, the split stack's POSTGRES_USER in an adopted dir)."""
    # the app role first: it exists in both kinds of directory, so no "role does not exist"
    # lines end up in the server log
    candidates = [os.environ.get("HIVE_DB_USER", ""), "postgres", "hive", "agent"]
    last = None
    for user in [c for c in candidates if c]:
        for db in (dbname, "template1"):
            try:
                conn = connect(user, db)
            except psycopg.OperationalError as exc:
                last = exc
                continue
            row = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()
            is_super = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            if is_super and db == dbname:
                return conn
            conn.close()
            return connect(row[0], dbname)
    raise SystemExit(f"dbsetup: cannot connect as a superuser over the socket: {last}")


def ensure_backup_role(conn):
    """Create or update hive_backup when a backup password is given."""
    pw = os.environ.get("HIVE_BACKUP_PASSWORD", "")
    if not pw:
        return
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BACKUP_ROLE,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} LOGIN REPLICATION PASSWORD {}").format(
        sql.Identifier(BACKUP_ROLE), sql.Literal(scram_verifier(pw))))
    print(f"dbsetup: backup role {BACKUP_ROLE} {'updated' if exists else 'created'}", flush=True)


def ensure_vector(dbname):
    """CREATE EXTENSION IF NOT EXISTS vector in dbname as the superuser (if dbname exists)."""
    with superuser_conn() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            print(f"dbsetup: database {dbname} does not exist; vector extension not checked", flush=True)
            return
    with superuser_conn(dbname) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def init():
    """Role, database and extension of a brand-new data directory."""
    user, db, pw = os.environ["HIVE_DB_USER"], os.environ["HIVE_DB_NAME"], os.environ["HIVE_DB_PASSWORD"]
    with connect("postgres", "postgres") as conn:
        if user != "postgres":
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(scram_verifier(pw))))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(user)))
        ensure_backup_role(conn)
    with connect("postgres", db) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    print(f"dbsetup: created role {user}, database {db}, extension vector", flush=True)


def start():
    """Idempotent per-start setup."""
    with superuser_conn() as conn:
        ensure_backup_role(conn)
    ensure_vector(os.environ.get("HIVE_DB_NAME", ""))


if __name__ == "__main__":
    {"init": init, "start": start}[sys.argv[1]]()
