-- Issue 17: builds started as "build only", and the record of notification
-- deliveries.

-- Set when the build was started as "build only": it is never deployed,
-- whatever the service's auto-deploy setting. (Whether a build deploys is
-- decided when it is queued and kept in its job's payload, so a restart
-- between success and deploy keeps the decision; this column is the record
-- the build page shows.)
ALTER TABLE builds ADD COLUMN build_only INTEGER NOT NULL DEFAULT 0 CHECK (build_only IN (0, 1));

-- One row per delivery attempt of a notification (and per "Send test"):
-- what was sent and how the target answered. Never the URL: errors are
-- stored redacted. The newest rows per target are kept (server::notify).
CREATE TABLE notification_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id   INTEGER NOT NULL REFERENCES notification_targets (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,     -- e.g. build.succeeded, or 'test'
    attempt     INTEGER NOT NULL,
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    http_status INTEGER,           -- the target's answer; NULL when none came
    error       TEXT,              -- why it failed, redacted
    at          TEXT NOT NULL
);
CREATE INDEX notification_deliveries_by_target ON notification_deliveries (target_id, id);
