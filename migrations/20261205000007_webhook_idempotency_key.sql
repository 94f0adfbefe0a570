-- GitLab's Idempotency-Key header stays the same across the retries of one
-- event, while X-Gitlab-Event-UUID may differ (or be missing). A verified
-- delivery claims its idempotency key like its delivery id: at most one
-- `dedupe = 1` row per (service, forge, key); NULL keys never conflict.
ALTER TABLE webhook_deliveries ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX webhook_deliveries_idempotency_once
    ON webhook_deliveries (service_id, forge, idempotency_key) WHERE dedupe = 1;
