-- Issue 16: BuildKit builds and the build cache.

-- The Dockerfile stage a service builds (`--target`); NULL: the last stage.
ALTER TABLE services ADD COLUMN build_target TEXT;

-- "Build without cache": every build of the service runs every step again.
ALTER TABLE services ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0 CHECK (no_cache IN (0, 1));
