-- Issue 15: per-service HTTPS policy on the edge. `https_redirect`: the
-- plain listener answers 308 to the same URL over https (ACME challenge
-- paths excepted); `hsts`: HTTPS answers carry Strict-Transport-Security.
-- Both off by default; applied at the service's next switch (deploy,
-- rollback, restart, start), like its domain.
ALTER TABLE services ADD COLUMN https_redirect INTEGER NOT NULL DEFAULT 0 CHECK (https_redirect IN (0, 1));
ALTER TABLE services ADD COLUMN hsts INTEGER NOT NULL DEFAULT 0 CHECK (hsts IN (0, 1));
