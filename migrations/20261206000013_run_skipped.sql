-- no-transaction
-- Issue 19: a run skipped by `[skip ci]` or by its pipeline's top-level
-- `when` is recorded as `skipped`; and each service says whether a newer
-- push cancels its older pushed runs (`supersede_runs`, default on).
--
-- SQLite cannot change a CHECK constraint in place, so `builds` is rebuilt
-- the way SQLite documents (ALTER TABLE, "Making Other Kinds Of Table
-- Schema Changes"). That needs foreign keys off (with them on, DROP TABLE
-- would cascade into build_steps and null deployments.build_id), which
-- only works outside a transaction: `-- no-transaction` above makes
-- `db::migrate` run this file with foreign keys off, in a transaction of
-- its own that also records it, checked by `PRAGMA foreign_key_check`.
-- Postgres: ALTER TABLE builds DROP CONSTRAINT …, ADD CONSTRAINT … CHECK.

CREATE TABLE builds_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id       INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL CHECK (number >= 1),
    job_id           INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    commit_sha       TEXT,
    git_ref          TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    actor            TEXT,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled',
                                       'timed_out', 'interrupted', 'skipped')),
    image_id         TEXT,
    tags             TEXT NOT NULL DEFAULT '[]',
    phase            TEXT,
    progress         INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempt          INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    error            TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    image_removed_at TEXT,
    build_only       INTEGER NOT NULL DEFAULT 0 CHECK (build_only IN (0, 1)),
    pushed_ref       TEXT,
    event            TEXT,
    pipeline         TEXT,
    pipeline_errors  TEXT,
    UNIQUE (service_id, number)
);

INSERT INTO builds_rebuilt (id, service_id, number, job_id, commit_sha, git_ref, trigger, actor, status,
    image_id, tags, phase, progress, attempt, error, created_at, started_at, finished_at, image_removed_at,
    build_only, pushed_ref, event, pipeline, pipeline_errors)
SELECT id, service_id, number, job_id, commit_sha, git_ref, trigger, actor, status,
    image_id, tags, phase, progress, attempt, error, created_at, started_at, finished_at, image_removed_at,
    build_only, pushed_ref, event, pipeline, pipeline_errors
FROM builds;

-- Ids are never reused (logs are files named by build id): the new table
-- continues the old one's AUTOINCREMENT sequence.
DELETE FROM sqlite_sequence WHERE name = 'builds_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'builds_rebuilt', seq FROM sqlite_sequence WHERE name = 'builds';

DROP TABLE builds;
ALTER TABLE builds_rebuilt RENAME TO builds;
CREATE INDEX builds_service_history ON builds (service_id, id DESC);
CREATE INDEX builds_job ON builds (job_id);

ALTER TABLE services ADD COLUMN supersede_runs INTEGER NOT NULL DEFAULT 1 CHECK (supersede_runs IN (0, 1));
