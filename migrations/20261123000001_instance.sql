-- One row describing this Slipway installation.
CREATE TABLE instance (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    created_at    TEXT NOT NULL,
    first_version TEXT NOT NULL
);
