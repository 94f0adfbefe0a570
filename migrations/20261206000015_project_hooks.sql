-- Issue 18: one webhook per project, fanned out to its services; the
-- builds of one push share one checkout and, for identical inputs, one
-- image build.
--
-- * `projects.webhook_secret`: the project hook's secret, sealed (as
--   `services.webhook_secret`).
-- * `webhook_deliveries.project_id`: a delivery to a project hook has a
--   project and no service. Its ids are deduplicated per project and forge
--   by the two partial indexes below (a service's are by the older ones:
--   NULL service ids never collide there).
-- * `builds.push_group`: the builds queued together by one push (or one
--   "Build all"); they share a checkout of each repository and ref, and
--   one image build per set of identical build inputs.
-- Postgres: the same ALTER TABLE … ADD COLUMN and CREATE INDEX … WHERE.

ALTER TABLE projects ADD COLUMN webhook_secret TEXT;

ALTER TABLE webhook_deliveries ADD COLUMN project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX webhook_deliveries_project_once
    ON webhook_deliveries (project_id, forge, delivery_id) WHERE dedupe = 1 AND service_id IS NULL;
CREATE UNIQUE INDEX webhook_deliveries_project_key_once
    ON webhook_deliveries (project_id, forge, idempotency_key) WHERE dedupe = 1 AND service_id IS NULL;
CREATE INDEX webhook_deliveries_project ON webhook_deliveries (project_id, id);

ALTER TABLE builds ADD COLUMN push_group TEXT;
CREATE INDEX builds_push_group ON builds (push_group) WHERE push_group IS NOT NULL;
