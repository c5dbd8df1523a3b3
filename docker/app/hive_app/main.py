"""Reference hive API: health, knowledge store and top-k cosine search over pgvector (HNSW).

Run: python3 -m uvicorn hive_app.main:app --host 0.0.0.0 --port $HIVE_API_PORT
Config: HIVE_DATABASE_URL (postgresql:// or postgresql+psycopg://).
"""
import json
import logging
import threading
from contextlib import asynccontextmanager
from typing import List, Optional

import psycopg
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from . import db
from .embed import DIM, embed, to_literal

log = logging.getLogger("hive_app")
state = {"pool": None, "schema": False}
schema_lock = threading.Lock()


def pool():
    """The process-wide pool, created on first use."""
    if state["pool"] is None:
        state["pool"] = db.Pool(db.database_url())
    return state["pool"]


def schema_ready():
    """Make sure the schema exists (once per process); False when it cannot be applied yet."""
    if state["schema"]:
        return True
    with schema_lock:
        if not state["schema"]:
            try:
                state["schema"] = pool().run(db.ensure_schema)
            except psycopg.Error as exc:
                log.warning("schema not applied yet: %s", str(exc).strip())
    return state["schema"]


@asynccontextmanager
async def lifespan(_app):
    """Apply the schema at startup when the database is reachable (retried lazily if not)."""
    schema_ready()
    yield
    if state["pool"] is not None:
        state["pool"].close()


app = FastAPI(title="hive reference API", lifespan=lifespan)


class KnowledgeIn(BaseModel):
    content: str
    name: Optional[str] = None
    meta_data: Optional[dict] = None
    embedding: Optional[List[float]] = None


class SearchIn(BaseModel):
    embedding: Optional[List[float]] = None
    query: Optional[str] = None
    k: int = 10


def unhealthy(failing, detail):
    """503 naming the failing part."""
    return JSONResponse(status_code=503, content={"status": "unhealthy", "failing": failing,
                                                  "detail": detail})


@app.get("/api/v1/health")
def health():
    """200 only when a query works and the vector extension is installed."""
    def probe(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cur.fetchone()
            return row[0] if row else None
    try:
        version = pool().run(probe)
    except Exception as exc:  # any failure to query is a database failure
        return unhealthy("database", str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__)
    if version is None:
        return unhealthy("pgvector", "extension vector is not installed in this database")
    return {"status": "healthy", "database": "ok", "pgvector": version}


def vector_of(embedding, text):
    """Validate a given embedding or derive one from text."""
    if embedding is not None:
        if len(embedding) != DIM:
            raise HTTPException(422, f"embedding must have {DIM} dimensions, got {len(embedding)}")
        return embedding
    return embed(text)


def need_schema():
    """503 when the schema cannot be applied (database down or extension missing)."""
    if not schema_ready():
        raise HTTPException(503, "database schema is not available")


@app.post("/api/v1/knowledge")
def add_knowledge(item: KnowledgeIn):
    """Store one knowledge row; returns its id."""
    need_schema()
    vec = vector_of(item.embedding, item.content)

    def insert(conn):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO agno.knowledge_base (name, content, meta_data, embedding) "
                        "VALUES (%s, %s, %s::jsonb, %s::vector) RETURNING id",
                        (item.name, item.content, json.dumps(item.meta_data or {}),
                         to_literal(vec)))
            return cur.fetchone()[0]
    try:
        return {"id": pool().run(insert)}
    except psycopg.OperationalError as exc:
        raise HTTPException(503, f"database: {exc}") from exc


@app.get("/api/v1/knowledge/{item_id}")
def get_knowledge(item_id: int):
    """One knowledge row by id (without its embedding)."""
    need_schema()

    def fetch(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT id, name, content, meta_data FROM agno.knowledge_base "
                        "WHERE id = %s", (item_id,))
            return cur.fetchone()
    row = pool().run(fetch)
    if row is None:
        raise HTTPException(404, "no such knowledge item")
    return {"id": row[0], "name": row[1], "content": row[2], "meta_data": row[3]}


@app.post("/api/v1/knowledge/search")
def search(req: SearchIn):
    """Top-k by cosine distance through the HNSW index."""
    need_schema()
    if req.embedding is None and not req.query:
        raise HTTPException(422, "give embedding or query")
    if not 1 <= req.k <= 1000:
        raise HTTPException(422, "k must be between 1 and 1000")
    lit = to_literal(vector_of(req.embedding, req.query or ""))

    def query(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT id, content, embedding <=> %s::vector AS distance "
                        "FROM agno.knowledge_base ORDER BY embedding <=> %s::vector LIMIT %s",
                        (lit, lit, req.k))
            return cur.fetchall()
    try:
        rows = pool().run(query)
    except psycopg.OperationalError as exc:
        raise HTTPException(503, f"database: {exc}") from exc
    return {"results": [{"id": r[0], "content": r[1], "distance": float(r[2])} for r in rows]}
