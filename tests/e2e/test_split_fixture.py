"""The old split stack fixture (fixtures/split) against the real engine: it starts through
depends_on: service_healthy, its API is healthy, the generator fills it, and
`compose stop -t 30` leaves a cleanly shut-down data directory. Also PostgreSQL 18's image.

Dev prefix and ports (so this never collides with other stacks on the machine):
HIVE_NAME_PREFIX=hf-, agent API 22886 / PG 22532, genie API 22887 / PG 22533.
"""
import os
import stat

import pytest

from splitstack import SplitStack, read_pg_state  # noqa: F401  (tests/e2e is on sys.path)

PREFIX = "hf-"
PORTS = {"agent_api": 22886, "genie_api": 22887, "agent_pg": 22532, "genie_pg": 22533}


def test_split_stack_both_profiles_fill_and_clean_stop(make_split_stack):
    s = make_split_stack("stack", profile="all", name_prefix=PREFIX, ports=PORTS)
    env = s.env_file
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    values = s.env_values()
    assert values["COMPOSE_PROFILES"] == "agent,genie"
    assert values["AGENT_DB_PASSWORD"] != values["GENIE_DB_PASSWORD"]

    s.up(timeout=120)
    for p in ("agent", "genie"):
        code, body = s.api_health(p)
        assert code == 200 and body["status"] == "healthy" and body["pgvector"], body
        assert s.state(p, "postgres") == "running" and s.state(p, "api") == "running"
        with s.connect(p) as conn:
            # what the image does like pgvector/pgvector:pg17 + the hive init script
            assert conn.execute("SELECT current_setting('server_version_num')::int / 10000"
                                ).fetchone()[0] == 17
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone()[0] is True
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'"
                                ).fetchone() is not None
        assert s.pg_version(p) == "17"
        assert s.data_dir(p).stat().st_uid == 999  # the image's postgres user
        assert s.pg_state(p) == "in production"

    summary = s.fill("5MB", seed=7, profile="agent")
    rows = summary["rows"]
    assert all(rows[t] > 0 for t in rows), rows
    assert 2 * 1024 ** 2 < summary["hive_bytes"] < 12 * 1024 ** 2, summary
    fp = s.fingerprint("agent")
    assert fp["agno.knowledge_base"][0] == rows["agno.knowledge_base"]
    assert fp == s.fingerprint("agent")  # deterministic
    with s.connect("agent") as conn:  # the HNSW index serves a top-k cosine query
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM agno.knowledge_base ORDER BY embedding <=> "
            "(SELECT embedding FROM agno.knowledge_base LIMIT 1) LIMIT 5"))
        assert "knowledge_base_embedding_hnsw" in plan, plan
    genie_fp = s.fingerprint("genie")
    assert all(v is None or v[0] == 0 for v in genie_fp.values()), genie_fp

    s.stop(timeout=30)
    for p in ("agent", "genie"):
        assert s.state(p, "postgres") == "exited"
        assert s.pg_state(p) == "shut down"

    # data survives a restart unchanged
    s.up(timeout=120)
    assert s.fingerprint("agent") == fp


def test_generator_is_deterministic_per_seed(make_split_stack):
    s = make_split_stack("stack", profile="agent", name_prefix=PREFIX, ports=PORTS)
    s.up(timeout=120)
    first = s.fill("1MB", seed=3, reset=True)
    fp1 = s.fingerprint()
    s.fill("1MB", seed=3, reset=True)
    assert s.fingerprint() == fp1
    s.fill("1MB", seed=4, reset=True)
    fp3 = s.fingerprint()
    assert fp3 != fp1
    assert fp3["agno.knowledge_base"][0] == first["rows"]["agno.knowledge_base"]


def test_pg18_image_initialises_pg18_data_dir(split_images_18, make_split_stack):
    s = make_split_stack("stack18", profile="agent", pg=18, name_prefix=PREFIX, ports=PORTS)
    assert s.env_values()["HIVE_SPLIT_PG_IMAGE"] == "localhost/hive-split-postgres:18"
    s.up(timeout=120)
    assert s.pg_version() == "18"
    with s.connect() as conn:
        assert conn.execute("SELECT current_setting('server_version_num')::int / 10000"
                            ).fetchone()[0] == 18
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                            ).fetchone() is not None
    s.stop(timeout=30)
    assert s.pg_state() == "shut down"
