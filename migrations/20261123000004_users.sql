-- Dashboard users (server::auth::users). Sessions live in the table the
-- tower-sessions SQLite store creates itself (`tower_sessions`, via its
-- `migrate()` at startup).
--
-- * name: validate::slug (lower-case letters, digits, '-', 1 to 40 bytes);
-- * password_hash: argon2id PHC string (m=19456 KiB, t=2, p=1);
-- * session_epoch: bumped on password change and on disable, so
--   sessions signed in before it no longer resolve to this user.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 40),
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'deployer', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
