-- Operating deployed services: stop/start, restart, and each deployment's
-- timeline.

-- Set while an operator has stopped the live deployment: its container is
-- stopped (kept), its host answers 503. A new deployment clears it (it is
-- a new row).
ALTER TABLE deployments ADD COLUMN stopped_at TEXT;

-- What happened to a deployment: the deploy's steps (container started,
-- healthy, switched, drained, old removed) and operator actions (stopped,
-- started, restarted), each with its time. Goes with its deployment.
CREATE TABLE deployment_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    actor         TEXT,
    detail        TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment_id, id);

-- Set when a delete of the service started: no build or deploy of it is
-- accepted any more, and its delete job finishes the work (even after a
-- crash) by deleting the row.
ALTER TABLE services ADD COLUMN deleting_at TEXT;
