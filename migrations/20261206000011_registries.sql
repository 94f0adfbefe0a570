-- Issue 16: image registries and multi-arch builds.

-- A project's image registry (optional). Images of its services are pushed
-- to `<host>/<image>/<service>` with every tag; the password (or token) is
-- sealed like every secret (AES-256-GCM, base64), never stored in clear.
CREATE TABLE project_registries (
    project_id      INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    host            TEXT NOT NULL,
    image           TEXT NOT NULL,
    username        TEXT,
    password_sealed TEXT,
    updated_at      TEXT NOT NULL
);

-- What a build pushed: `<host>/<image>/<service>@sha256:…` (the manifest,
-- or the manifest list of a multi-arch build). A deploy on an engine that
-- lacks the image pulls this.
ALTER TABLE builds ADD COLUMN pushed_ref TEXT;

-- The platforms a service builds (JSON array, e.g. ["linux/amd64",
-- "linux/arm64"]); empty: the engine's own platform only.
ALTER TABLE services ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]';
