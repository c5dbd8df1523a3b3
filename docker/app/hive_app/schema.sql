-- The hive data model used by the reference app (docker/app) and the data generator
-- (fixtures/). Idempotent: the app runs it at startup, the generator before filling.
-- Requires the vector extension to exist already (created by a superuser at init).
CREATE SCHEMA IF NOT EXISTS agno;
CREATE TABLE IF NOT EXISTS agno.knowledge_base (
    id          bigserial PRIMARY KEY,
    name        text,
    content     text NOT NULL,
    meta_data   jsonb NOT NULL DEFAULT '{}',
    embedding   vector(384),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS knowledge_base_embedding_hnsw
    ON agno.knowledge_base USING hnsw (embedding vector_cosine_ops);
CREATE TABLE IF NOT EXISTS agno.sessions (
    session_id   text PRIMARY KEY,
    agent_id     text,
    user_id      text,
    memory       jsonb,
    session_data jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS agno.memories (
    id          bigserial PRIMARY KEY,
    user_id     text,
    memory      jsonb NOT NULL,
    topics      text[],
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE SCHEMA IF NOT EXISTS hive;
CREATE TABLE IF NOT EXISTS hive.component_versions (
    id              serial PRIMARY KEY,
    component_type  text NOT NULL,
    name            text NOT NULL,
    version         integer NOT NULL,
    config          jsonb NOT NULL DEFAULT '{}',
    is_active       boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (component_type, name, version)
);
CREATE TABLE IF NOT EXISTS hive.version_history (
    id            bigserial PRIMARY KEY,
    component_id  integer REFERENCES hive.component_versions(id),
    from_version  integer,
    to_version    integer NOT NULL,
    action        text NOT NULL,
    description   text,
    changed_by    text,
    changed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS hive.agent_metrics (
    id           bigserial PRIMARY KEY,
    agent_id     text NOT NULL,
    metric_name  text NOT NULL,
    value        double precision NOT NULL,
    tags         jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
