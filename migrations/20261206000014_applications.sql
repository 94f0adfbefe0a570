-- no-transaction
-- Issue 18, multi-service applications: a service has a kind (`web`: port,
-- route and probe; `worker`: no port, no route; `image`: an image
-- reference, no git and no build), may take its image from another
-- service's build (`image_from_id`), may override the image's command (an
-- argument vector), and declares named volumes. A worker or image service
-- without a probe is healthy once it has stayed up `settle_secs`
-- (`health_kind = 'none'`).
--
-- `port` becomes optional and `health_kind` gains `none`: SQLite cannot
-- change a column's constraints in place, so `services` is rebuilt the way
-- SQLite documents, as migration 13 did for `builds` (see there, and
-- `db::migrate`: foreign keys off, one transaction, foreign_key_check).
-- Postgres: ALTER TABLE services ALTER COLUMN port DROP NOT NULL, DROP/ADD
-- CONSTRAINT …, ADD COLUMN ….

CREATE TABLE services_rebuilt (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id             INTEGER NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    name                   TEXT NOT NULL,
    kind                   TEXT NOT NULL DEFAULT 'web' CHECK (kind IN ('web', 'worker', 'image')),
    git_url                TEXT NOT NULL,          -- '' for an image service
    branch                 TEXT NOT NULL DEFAULT 'main',
    context_path           TEXT NOT NULL DEFAULT '.',
    dockerfile_path        TEXT NOT NULL DEFAULT 'Dockerfile',
    build_args             TEXT NOT NULL DEFAULT '{}',
    -- The image reference an `image` service deploys (already in the engine).
    image_ref              TEXT,
    -- The service whose builds this one deploys (same project); a source
    -- with dependents cannot be deleted.
    image_from_id          INTEGER REFERENCES services (id) ON DELETE RESTRICT,
    -- JSON array, the container's command (argument vector); NULL: the image's.
    command                TEXT,
    -- JSON array of {"name", "path"}: named volumes, kept across deploys.
    volumes                TEXT NOT NULL DEFAULT '[]',
    port                   INTEGER CHECK (port BETWEEN 1 AND 65535),
    health_kind            TEXT NOT NULL DEFAULT 'http' CHECK (health_kind IN ('http', 'command', 'none')),
    health_path            TEXT DEFAULT '/',
    health_command         TEXT,
    health_interval_ms     INTEGER NOT NULL DEFAULT 2000 CHECK (health_interval_ms > 0),
    health_timeout_ms      INTEGER NOT NULL DEFAULT 2000 CHECK (health_timeout_ms > 0),
    health_retries         INTEGER NOT NULL DEFAULT 15 CHECK (health_retries >= 1),
    health_start_period_ms INTEGER NOT NULL DEFAULT 0 CHECK (health_start_period_ms >= 0),
    settle_secs            INTEGER NOT NULL DEFAULT 5 CHECK (settle_secs BETWEEN 0 AND 3600),
    memory_bytes           INTEGER NOT NULL DEFAULT 536870912 CHECK (memory_bytes > 0),
    cpu_millis             INTEGER NOT NULL DEFAULT 1000 CHECK (cpu_millis > 0),
    auto_deploy            INTEGER NOT NULL DEFAULT 1 CHECK (auto_deploy IN (0, 1)),
    build_timeout_secs     INTEGER NOT NULL DEFAULT 1800 CHECK (build_timeout_secs > 0),
    drain_secs             INTEGER NOT NULL DEFAULT 30 CHECK (drain_secs >= 0),
    next_build_number      INTEGER NOT NULL DEFAULT 1 CHECK (next_build_number >= 1),
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    domain                 TEXT,
    webhook_secret         TEXT,
    git_url_sealed         TEXT,
    deleting_at            TEXT,
    build_target           TEXT,
    no_cache               INTEGER NOT NULL DEFAULT 0 CHECK (no_cache IN (0, 1)),
    platforms              TEXT NOT NULL DEFAULT '[]',
    pipeline_path          TEXT NOT NULL DEFAULT '.slipway.yml',
    supersede_runs         INTEGER NOT NULL DEFAULT 1 CHECK (supersede_runs IN (0, 1)),
    UNIQUE (project_id, name),
    CHECK ((health_kind = 'http' AND health_path IS NOT NULL AND port IS NOT NULL)
        OR (health_kind = 'command' AND health_command IS NOT NULL)
        OR (health_kind = 'none' AND kind <> 'web')),
    CHECK (kind <> 'web' OR port IS NOT NULL),
    CHECK (kind <> 'worker' OR port IS NULL),
    CHECK ((kind = 'image') = (image_ref IS NOT NULL)),
    CHECK (kind <> 'image' OR image_from_id IS NULL),
    CHECK (image_from_id IS NULL OR image_from_id <> id)
);

INSERT INTO services_rebuilt (id, project_id, name, kind, git_url, branch, context_path, dockerfile_path,
    build_args, port, health_kind, health_path, health_command, health_interval_ms, health_timeout_ms,
    health_retries, health_start_period_ms, memory_bytes, cpu_millis, auto_deploy, build_timeout_secs,
    drain_secs, next_build_number, created_at, updated_at, domain, webhook_secret, git_url_sealed,
    deleting_at, build_target, no_cache, platforms, pipeline_path, supersede_runs)
SELECT id, project_id, name, 'web', git_url, branch, context_path, dockerfile_path,
    build_args, port, health_kind, health_path, health_command, health_interval_ms, health_timeout_ms,
    health_retries, health_start_period_ms, memory_bytes, cpu_millis, auto_deploy, build_timeout_secs,
    drain_secs, next_build_number, created_at, updated_at, domain, webhook_secret, git_url_sealed,
    deleting_at, build_target, no_cache, platforms, pipeline_path, supersede_runs
FROM services;

-- Ids are never reused: the new table continues the old one's sequence.
DELETE FROM sqlite_sequence WHERE name = 'services_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'services_rebuilt', seq FROM sqlite_sequence WHERE name = 'services';

DROP TABLE services;
ALTER TABLE services_rebuilt RENAME TO services;
CREATE UNIQUE INDEX services_domain ON services (domain) WHERE domain IS NOT NULL;
CREATE INDEX services_image_from ON services (image_from_id) WHERE image_from_id IS NOT NULL;

-- Published host ports (non-HTTP protocols: a database, SMTP, …): one row
-- per port, so two services can never claim the same host port and
-- protocol (checked when saved, with the holder named).
CREATE TABLE service_ports (
    service_id     INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    host_port      INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    protocol       TEXT NOT NULL DEFAULT 'tcp' CHECK (protocol IN ('tcp', 'udp')),
    container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    PRIMARY KEY (host_port, protocol)
);
CREATE INDEX service_ports_service ON service_ports (service_id);

-- "Deploy all" order: a service deploys after the ones it names (same
-- project). A cycle is refused when saved.
CREATE TABLE service_deploy_after (
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    after_id   INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    PRIMARY KEY (service_id, after_id),
    CHECK (service_id <> after_id)
);
CREATE INDEX service_deploy_after_after ON service_deploy_after (after_id);

-- A push builds the service only when a changed file matches one of these
-- globs (JSON array; empty: every push builds). A manual build always runs.
ALTER TABLE services ADD COLUMN watch_paths TEXT NOT NULL DEFAULT '[]';
