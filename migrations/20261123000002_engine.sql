-- Projects, services, builds, deployments and the durable job queue.
--
-- Conventions (see docs/ARCHITECTURE.md):
-- * timestamps are TEXT, RFC 3339 UTC with milliseconds (`db::now_rfc3339`),
--   so string order is time order and comparisons can be done in SQL;
-- * booleans are INTEGER 0/1 with a CHECK (portable to Postgres as is);
-- * JSON documents are TEXT (jsonb on Postgres later);
-- * status sets are enforced with CHECK constraints;
-- * ids are SQLite AUTOINCREMENT so an id is never reused after a delete
--   (a stale link or cancel request can never hit a newer row).

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,               -- validate::slug
    created_at TEXT NOT NULL
);

CREATE TABLE services (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    -- A project is deleted only after its services (their containers must go first).
    project_id             INTEGER NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    name                   TEXT NOT NULL,          -- validate::slug, unique per project
    git_url                TEXT NOT NULL,          -- validate::git_url (https credentials allowed)
    branch                 TEXT NOT NULL DEFAULT 'main',
    context_path           TEXT NOT NULL DEFAULT '.',
    dockerfile_path        TEXT NOT NULL DEFAULT 'Dockerfile',
    build_args             TEXT NOT NULL DEFAULT '{}',  -- JSON object name -> value
    port                   INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    health_kind            TEXT NOT NULL DEFAULT 'http' CHECK (health_kind IN ('http', 'command')),
    health_path            TEXT DEFAULT '/',       -- for 'http'
    health_command         TEXT,                   -- for 'command': JSON array, an argument vector
    health_interval_ms     INTEGER NOT NULL DEFAULT 2000 CHECK (health_interval_ms > 0),
    health_timeout_ms      INTEGER NOT NULL DEFAULT 2000 CHECK (health_timeout_ms > 0),
    health_retries         INTEGER NOT NULL DEFAULT 15 CHECK (health_retries >= 1),
    health_start_period_ms INTEGER NOT NULL DEFAULT 0 CHECK (health_start_period_ms >= 0),
    memory_bytes           INTEGER NOT NULL DEFAULT 536870912 CHECK (memory_bytes > 0),
    cpu_millis             INTEGER NOT NULL DEFAULT 1000 CHECK (cpu_millis > 0),
    auto_deploy            INTEGER NOT NULL DEFAULT 1 CHECK (auto_deploy IN (0, 1)),
    build_timeout_secs     INTEGER NOT NULL DEFAULT 1800 CHECK (build_timeout_secs > 0),
    drain_secs             INTEGER NOT NULL DEFAULT 30 CHECK (drain_secs >= 0),
    next_build_number      INTEGER NOT NULL DEFAULT 1 CHECK (next_build_number >= 1),
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    UNIQUE (project_id, name),
    CHECK ((health_kind = 'http' AND health_path IS NOT NULL)
        OR (health_kind = 'command' AND health_command IS NOT NULL))
);

-- Environment variables. A secret value is stored encrypted (AES-256-GCM, see
-- `secrets`); `value` then holds the ciphertext, never the plain text.
CREATE TABLE service_env (
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,                      -- validate::env_name
    value      TEXT NOT NULL,
    secret     INTEGER NOT NULL DEFAULT 0 CHECK (secret IN (0, 1)),
    PRIMARY KEY (service_id, name)
);

-- The durable job queue (`server::jobs`). A job runs at most one at a time per
-- service (claim skips services with a running job); jobs without a service
-- (maintenance) are not serialized.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    service_id       INTEGER REFERENCES services (id) ON DELETE CASCADE,
    payload          TEXT NOT NULL DEFAULT '{}',  -- JSON
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled',
                                       'timed_out', 'interrupted')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    timeout_ms       INTEGER NOT NULL CHECK (timeout_ms > 0),
    run_after        TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    phase            TEXT,
    progress         INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL))
);

-- Claim: the oldest queued job that is due.
CREATE INDEX jobs_queued ON jobs (id, run_after) WHERE status = 'queued';
-- Claim (services busy) and recovery (expired leases).
CREATE INDEX jobs_running_service ON jobs (service_id) WHERE status = 'running';
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE status = 'running';
-- History, newest first, keyset-paginated by id.
CREATE INDEX jobs_service_history ON jobs (service_id, id DESC);

CREATE TABLE builds (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id  INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL CHECK (number >= 1), -- from services.next_build_number
    -- The job that runs this build: enqueue the job, then insert the build
    -- with its id, in the same transaction. A retry re-queues the same job.
    job_id      INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    commit_sha  TEXT,                               -- resolved at checkout when built from a ref
    git_ref     TEXT NOT NULL,
    trigger     TEXT NOT NULL,                      -- manual | webhook | api | …
    actor       TEXT,                               -- user name, or the webhook's source
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled',
                                  'timed_out', 'interrupted')),
    image_id    TEXT,
    tags        TEXT NOT NULL DEFAULT '[]',         -- JSON array of image tags
    phase       TEXT,
    progress    INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempt     INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    error       TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    UNIQUE (service_id, number)
);

CREATE INDEX builds_service_history ON builds (service_id, id DESC);
CREATE INDEX builds_job ON builds (job_id);

CREATE TABLE deployments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id   INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    build_id     INTEGER REFERENCES builds (id) ON DELETE SET NULL,
    job_id       INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    image_id     TEXT NOT NULL,                     -- an image id, never a mutable tag
    config       TEXT NOT NULL,                     -- JSON snapshot: env, port, health check, resources
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'starting', 'live', 'superseded', 'rolled_back', 'failed')),
    reason       TEXT,
    actor        TEXT,
    rollback_of  INTEGER REFERENCES deployments (id) ON DELETE SET NULL,
    container_id TEXT,
    error        TEXT,
    log_tail     TEXT,                              -- the container's last log lines on failure
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
);

CREATE INDEX deployments_service_history ON deployments (service_id, id DESC);
CREATE INDEX deployments_job ON deployments (job_id);
-- At most one live deployment per service: supersede the old one first.
CREATE UNIQUE INDEX deployments_one_live ON deployments (service_id) WHERE status = 'live';
