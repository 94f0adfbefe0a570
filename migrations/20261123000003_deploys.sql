-- Engine additions: a stable id for this installation (labels on every
-- container and image it makes, so two installations sharing one Docker
-- Engine never touch each other's objects), and the retention record.

ALTER TABLE instance ADD COLUMN uid TEXT;

-- Set when retention removed the build's image; a rollback to it is refused.
ALTER TABLE builds ADD COLUMN image_removed_at TEXT;
-- Deployments that were live once, newest first (rollback targets, retention).
CREATE INDEX deployments_service_status ON deployments (service_id, status, id DESC);

-- The host name the edge router answers for a service; NULL means the
-- default `<service>.<project>.localhost`. Two services never share one.
ALTER TABLE services ADD COLUMN domain TEXT;
CREATE UNIQUE INDEX services_domain ON services (domain) WHERE domain IS NOT NULL;
