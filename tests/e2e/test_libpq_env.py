"""End-to-end: `backup` and `check` follow libpq's conventions, as pg_basebackup and psql do.

The server is the host's PostgreSQL 15 (Debian's postgresql-15), started by the test in a
directory of its own under /tmp: Unix socket only (listen_addresses ''), in a socket
directory of its own, on port 20532 (this file's range is 20xxx), with a replication role
that needs a password (scram-sha-256) and a pg_hba "replication" line. Nothing listens on
TCP, so hive-migrate's old default (127.0.0.1:35532) cannot reach it: a backup succeeds
only if PGHOST/PGPORT/PGUSER, a service file, or -d were honoured. Each backup is verified
(`backups verify`), one is restored and started, and its rows are compared with the source.
Teardown stops every server (pg_ctl stop -m fast) and removes the directory.
"""
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from conftest import hm, run, wait_until

PGBIN = Path("/usr/lib/postgresql/15/bin")
PORT, RESTORED_PORT, WRONG_PORT = 20532, 20533, 20539
ROLE, PASSWORD = "hl_repl", "Hl-repl-pw-5b2e9"
EXIT_USAGE, EXIT_DATABASE = 2, 32

pytestmark = [
    pytest.mark.skipif(not (PGBIN / "initdb").exists(), reason="postgresql-15 is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runuser -u postgres, restore --owner)"),
]


def as_postgres(*cmd, **kw):
    """Run a PostgreSQL server binary as the postgres user (initdb refuses root)."""
    return run(["runuser", "-u", "postgres", "--", *cmd], **kw)


def clean_env(**extra):
    """The caller's environment without anything that names a server or a password, plus extra:
    only what a test sets can make a connection work."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k != "HIVE_BACKUP_PASSWORD"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_server(data, sockdir, port, log):
    """pg_ctl start on a Unix socket only; then poll until a real query answers."""
    opts = f"-c listen_addresses='' -c unix_socket_directories={sockdir} -c port={port}"
    r = as_postgres(PGBIN / "pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start")
    assert r.returncode == 0, (r.stdout, r.stderr, Path(log).read_text() if Path(log).exists() else "")

    def answers():
        with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="postgres",
                             connect_timeout=2) as c:
            return c.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
    wait_until(answers, 60, what=f"PostgreSQL 15 on {sockdir} port {port}")


def stop_server(data):
    if (Path(data) / "postmaster.pid").exists():
        as_postgres(PGBIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop")


def table_digest(sockdir, port):
    """Row count and md5 of every row of the test table, in key order."""
    with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="hl_data") as c:
        return c.execute("SELECT count(*), md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) "
                         "FROM items").fetchone()


@pytest.fixture(scope="module")
def pg15():
    """A PostgreSQL 15 cluster reachable only through its socket directory and port 20532."""
    base = Path(tempfile.mkdtemp(prefix="hl-pg15-", dir="/tmp"))
    pg = pwd.getpwnam("postgres")
    os.chown(base, pg.pw_uid, pg.pw_gid)
    sock = base / "sock"
    sock.mkdir()
    os.chown(sock, pg.pw_uid, pg.pw_gid)
    data = base / "data"
    servers = [data]
    try:
        r = as_postgres(PGBIN / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                        "--auth-host=reject", "-E", "UTF8", "--locale=C")
        assert r.returncode == 0, r.stderr
        # postgres (trust) is the test's own setup channel; the role hive-migrate uses must
        # authenticate with its password, for replication and for check's live queries.
        (data / "pg_hba.conf").write_text(
            f"local replication {ROLE} scram-sha-256\n"
            f"local all {ROLE} scram-sha-256\n"
            "local all postgres trust\n")
        start_server(data, sock, PORT, base / "server.log")
        with psycopg.connect(host=str(sock), port=PORT, user="postgres", dbname="postgres",
                             autocommit=True) as c:
            c.execute(f"CREATE ROLE {ROLE} LOGIN REPLICATION PASSWORD '{PASSWORD}'")
            c.execute("CREATE DATABASE hl_data")
        with psycopg.connect(host=str(sock), port=PORT, user="postgres", dbname="hl_data",
                             autocommit=True) as c:
            c.execute("CREATE TABLE items (id int PRIMARY KEY, payload text NOT NULL)")
            c.execute("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
            c.execute(f"GRANT SELECT ON items TO {ROLE}")
        yield {"base": base, "sock": sock, "data": data, "servers": servers, "pg": pg}
    finally:
        for d in servers:
            stop_server(d)
        shutil.rmtree(base, ignore_errors=True)


def pgpass(tmp_path, sock, port=PORT, database="replication"):
    """A 0600 password file with one line for the role (database "replication": the name
    physical replication connections match, as pg_basebackup's)."""
    f = tmp_path / "pgpass"
    f.write_text(f"{sock}:{port}:{database}:{ROLE}:{PASSWORD}\n")
    f.chmod(0o600)
    return f


def backup_json(repo, *args, env):
    """hive-migrate backup --json; asserts success and returns the parsed output."""
    r = hm("backup", "--repo", repo, "--json", *args, env=env, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return json.loads(r.stdout)


def assert_verified(repo, item, sock):
    """The backup is listed, verifies, and records the server it came from."""
    v = hm("backups", "verify", item["id"], "--repo", repo, timeout=300)
    assert v.returncode == 0, (v.stdout, v.stderr)
    listed = json.loads(hm("backups", "list", "--repo", repo, "--json").stdout)
    assert [b["id"] for b in listed] == [item["id"]]
    assert item["kind"] == "online" and 150000 <= item["pg_version"] < 160000
    assert item["connection"] == {"host": str(sock), "port": str(PORT), "user": ROLE}
    assert item["source"] == f"{sock}:{PORT} user {ROLE}"


def test_environment_only_backup_verifies_and_restores_identical(pg15, tmp_path):
    """PGHOST/PGPORT/PGUSER + PGPASSFILE and nothing else: a verified backup of the PG 15
    server; restored and started, it holds exactly the rows of the source."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    env = clean_env(PGHOST=sock, PGPORT=PORT, PGUSER=ROLE, PGPASSFILE=pgpass(tmp_path, sock))
    item = backup_json(repo, env=env)
    assert_verified(repo, item, sock)
    assert PASSWORD not in json.dumps(item)

    source = table_digest(sock, PORT)
    restored = pg15["base"] / "restored"
    pg = pg15["pg"]
    r = hm("backups", "restore", item["id"], "--repo", repo, "--to", restored,
           "--owner", f"{pg.pw_uid}:{pg.pw_gid}", timeout=300)
    assert r.returncode == 0, r.stderr
    pg15["servers"].append(restored)
    sock2 = pg15["base"] / "sock-restored"
    sock2.mkdir()
    os.chown(sock2, pg.pw_uid, pg.pw_gid)
    start_server(restored, sock2, RESTORED_PORT, pg15["base"] / "restored.log")
    assert table_digest(sock2, RESTORED_PORT) == source
    assert source[0] == 50000
    stop_server(restored)


def test_service_file(pg15, tmp_path):
    """PGSERVICE + PGSERVICEFILE name the server; the password comes from PGPASSWORD."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[hive15]\nhost={sock}\nport={PORT}\nuser={ROLE}\n")
    env = clean_env(PGSERVICE="hive15", PGSERVICEFILE=services, PGPASSWORD=PASSWORD)
    item = backup_json(repo, env=env)
    assert_verified(repo, item, sock)


def test_dbname_connection_string(pg15, tmp_path):
    """-d "host=... port=... user=..." as pg_basebackup -d; the password from PGPASSFILE."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    env = clean_env(PGPASSFILE=pgpass(tmp_path, sock))
    item = backup_json(repo, "-d", f"host={sock} port={PORT} user={ROLE}", env=env)
    assert_verified(repo, item, sock)


def test_dbname_uri(pg15, tmp_path):
    """--dbname postgresql://role@%2Fsocket%2Fdir:port/ (a percent-encoded socket directory);
    the password from HIVE_BACKUP_PASSWORD."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    uri = f"postgresql://{ROLE}@{str(sock).replace('/', '%2F')}:{PORT}/"
    env = clean_env(HIVE_BACKUP_PASSWORD=PASSWORD)
    item = backup_json(repo, "--dbname", uri, env=env)
    assert_verified(repo, item, sock)


def test_options_override_dbname_environment_and_profile(pg15, tmp_path):
    """-h/-p/-U win over --dbname, which wins over the environment; both win over --profile."""
    sock = pg15["sock"]
    env = clean_env(PGHOST="/nonexistent", PGPORT=WRONG_PORT, PGUSER="nobody", PGPASSWORD=PASSWORD)
    repo = tmp_path / "repo1"
    item = backup_json(repo, "-d", f"host={sock} port={WRONG_PORT}", "-p", str(PORT), "-U", ROLE, env=env)
    assert_verified(repo, item, sock)
    repo = tmp_path / "repo2"
    item = backup_json(repo, "--profile", "agent", "--host", str(sock), "--port", str(PORT),
                       "--user", ROLE, env=env)
    assert_verified(repo, item, sock)
    repo = tmp_path / "repo3"
    item = backup_json(repo, "--profile", "genie", "-d", f"host={sock} port={PORT} user={ROLE}", env=env)
    assert_verified(repo, item, sock)


def test_wrong_port_one_line_exit_32_nothing_listed(pg15, tmp_path):
    """A wrong PGPORT: exit 32, one line naming the socket directory and port libpq tried
    (never the password), nothing in the repository."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    env = clean_env(PGHOST=sock, PGPORT=WRONG_PORT, PGUSER=ROLE, PGPASSWORD=PASSWORD)
    r = hm("backup", "--repo", repo, env=env, timeout=120)
    assert r.returncode == EXIT_DATABASE, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("hive-migrate: error: cannot connect for replication to ")
    assert f'socket "{sock}" port {WRONG_PORT}' in lines[0]
    assert f'user "{ROLE}"' in lines[0] and "(hint: " in lines[0]
    assert PASSWORD not in r.stderr and r.stdout == ""
    listed = hm("backups", "list", "--repo", repo, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert sorted(p.name for p in repo.iterdir()) == [".lock", ".tmp"]
    assert list((repo / ".tmp").iterdir()) == []


def test_wrong_password_and_password_in_dbname(pg15, tmp_path):
    """A refused password: exit 32 with a hint about the password. A password inside
    --dbname: exit 2 before anything is written, the password not echoed."""
    sock, repo = pg15["sock"], tmp_path / "repo"
    env = clean_env(PGHOST=sock, PGPORT=PORT, PGUSER=ROLE, PGPASSWORD="not-" + PASSWORD)
    r = hm("backup", "--repo", repo, env=env, timeout=120)
    assert r.returncode == EXIT_DATABASE and len(r.stderr.splitlines()) == 1, r.stderr
    assert "password" in r.stderr and PASSWORD not in r.stderr
    for conninfo in (f"host={sock} port={PORT} user={ROLE} password={PASSWORD}",
                     f"postgresql://{ROLE}:{PASSWORD}@{str(sock).replace('/', '%2F')}:{PORT}/"):
        r = hm("backup", "--repo", tmp_path / "never", "-d", conninfo, env=clean_env(), timeout=60)
        assert r.returncode == EXIT_USAGE, (r.returncode, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and PASSWORD not in r.stderr, r.stderr
        assert not (tmp_path / "never").exists()


def check_json(*args, env):
    r = hm("check", *args, "--json", env=env, timeout=120)
    assert r.stdout, (r.returncode, r.stderr)
    return json.loads(r.stdout)


def codes(report):
    return {p["code"] for p in report["problems"]}


def test_check_data_dir_uses_libpq_environment(pg15, tmp_path):
    """check --data-dir with a live server: libpq's environment names it (here PGHOST,
    PGPORT, PGUSER, PGDATABASE and PGPASSFILE), the live checks list its databases; --dbname
    takes a connection string; a server that is another cluster is not taken for this one."""
    sock, data = pg15["sock"], pg15["data"]
    pw = pgpass(tmp_path, sock, database="*")
    rep = check_json("--data-dir", data, env=clean_env(PGHOST=sock, PGPORT=PORT, PGUSER=ROLE,
                                                       PGDATABASE="postgres", PGPASSFILE=pw))
    assert rep["server"]["connected"] is True, rep
    assert rep["server"]["server"].startswith(f"{sock}:{PORT} {ROLE}@")
    assert "hl_data" in {d["name"] for d in rep["databases"]}

    rep = check_json("--data-dir", data, "--dbname", f"host={sock} port={PORT} user={ROLE} dbname=hl_data",
                     env=clean_env(PGPASSFILE=pw))
    assert rep["server"]["connected"] is True
    assert rep["server"]["server"] == f"{sock}:{PORT} {ROLE}@hl_data"

    # a stopped server named by the environment: no live checks, no connection warning
    rep = check_json("--data-dir", data, env=clean_env(PGHOST=sock, PGPORT=WRONG_PORT, PGUSER=ROLE,
                                                       PGDATABASE="postgres", PGPASSFILE=pw))
    assert rep["server"]["connected"] is False and "no-connection" not in codes(rep)
    # asked for explicitly, the same failure is a warning naming the socket and port
    rep = check_json("--data-dir", data, "--port", str(WRONG_PORT),
                     env=clean_env(PGHOST=sock, PGUSER=ROLE, PGPASSFILE=pw))
    warn = [p for p in rep["problems"] if p["code"] == "no-connection"]
    assert warn and f'socket "{sock}" port {WRONG_PORT}' in warn[0]["message"], rep["problems"]

    # another cluster's data directory, checked while PGHOST points at this server
    other = pg15["base"] / "other"
    r = as_postgres(PGBIN / "initdb", "-D", other, "-U", "postgres", "--auth-local=trust")
    assert r.returncode == 0, r.stderr
    rep = check_json("--data-dir", other, env=clean_env(PGHOST=sock, PGPORT=PORT, PGUSER=ROLE,
                                                        PGDATABASE="postgres", PGPASSFILE=pw))
    assert "live-server-mismatch" in codes(rep), rep["problems"]
    assert rep["server"]["connected"] is False and not rep.get("databases")
