-- Issue 19: pipelines. A run is a build row; its steps (and service
-- containers) are build_steps rows, persisted as they change.

-- Where the pipeline file is read from, relative to the checkout.
ALTER TABLE services ADD COLUMN pipeline_path TEXT NOT NULL DEFAULT '.slipway.yml';

-- What started the run: push, tag, pull_request or manual; and the
-- pipeline it ran: NULL before checkout, 'implicit' without a file, or the
-- file's path. A file refused by validation is in `pipeline_errors` (JSON
-- list of {line, column, field, message}).
ALTER TABLE builds ADD COLUMN event TEXT;
ALTER TABLE builds ADD COLUMN pipeline TEXT;
ALTER TABLE builds ADD COLUMN pipeline_errors TEXT;

CREATE TABLE build_steps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id     INTEGER NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    variant      INTEGER NOT NULL DEFAULT 0,
    variant_name TEXT NOT NULL DEFAULT 'default',
    name         TEXT NOT NULL,
    -- build, deploy, commands, from_build: steps; service: a service container.
    kind         TEXT NOT NULL CHECK (kind IN ('build', 'deploy', 'commands', 'from_build', 'service')),
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'success', 'failure', 'skipped', 'cancelled', 'killed')),
    exit_code    INTEGER,
    oom          INTEGER NOT NULL DEFAULT 0 CHECK (oom IN (0, 1)),
    -- A failure that `failure: ignore` keeps from failing the run.
    ignored      INTEGER NOT NULL DEFAULT 0 CHECK (ignored IN (0, 1)),
    depends_on   TEXT NOT NULL DEFAULT '[]',
    error        TEXT,
    line         INTEGER,
    started_at   TEXT,
    finished_at  TEXT,
    -- Services: milliseconds from start to healthy.
    healthy_ms   INTEGER,
    UNIQUE (build_id, variant, kind, name)
);
CREATE INDEX build_steps_by_build ON build_steps (build_id, variant, id);
