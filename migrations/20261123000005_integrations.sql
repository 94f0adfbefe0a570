-- Integrations (issue 6): API tokens, forge webhooks, notifications, audit.
--
-- Secrets (webhook secrets, notification URLs, which carry tokens) are
-- stored sealed by server::secrets (AES-256-GCM, base64 text), never plain.

-- API tokens (server::auth::tokens). The token itself is shown once; only
-- its SHA-256 (hex) is kept. `prefix` is the first characters, to tell
-- tokens apart in a list.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    token_sha256 TEXT NOT NULL UNIQUE CHECK (length(token_sha256) = 64),
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Per-service webhook secret (sealed), generated when the service is
-- created or on request.
ALTER TABLE services ADD COLUMN webhook_secret TEXT;

-- Every webhook delivery received (server::webhooks), accepted or not.
-- `dedupe` is 1 only for the first verified delivery of a delivery id, so a
-- forged request can never claim an id ahead of the real one.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id   INTEGER REFERENCES services (id) ON DELETE CASCADE,
    forge        TEXT NOT NULL CHECK (forge IN ('github', 'gitlab', 'gitea')),
    delivery_id  TEXT,
    event        TEXT,
    status       TEXT NOT NULL,   -- built, ping, ignored, duplicate, rejected
    reason       TEXT NOT NULL,
    build_id     INTEGER REFERENCES builds (id) ON DELETE SET NULL,
    dedupe       INTEGER NOT NULL DEFAULT 0 CHECK (dedupe IN (0, 1)),
    received_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_once
    ON webhook_deliveries (service_id, forge, delivery_id) WHERE dedupe = 1;
CREATE INDEX webhook_deliveries_service ON webhook_deliveries (service_id, id);

-- Notification targets per project (server::notify).
CREATE TABLE notification_targets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'slack')),
    url_sealed  TEXT NOT NULL,
    events      TEXT NOT NULL,    -- comma-separated event names
    created_at  TEXT NOT NULL,
    UNIQUE (project_id, name)
);

-- Audit log (server::audit).
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,     -- user name, or 'webhook:<forge>', or '-' when unknown
    source     TEXT NOT NULL CHECK (source IN ('dashboard', 'api', 'webhook', 'cli', 'system')),
    action     TEXT NOT NULL,     -- e.g. login, login_failed, build.trigger
    target     TEXT,              -- e.g. service:3, build:17, user:ann
    detail     TEXT               -- short text, never a secret
);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
