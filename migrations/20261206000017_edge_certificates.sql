-- Issue 15: certificates uploaded for the edge's HTTPS listener, one row
-- per certificate (a PEM chain and its key). The chain is public and kept
-- in the clear, re-encoded from its parsed certificates (so nothing else
-- pasted beside them is ever stored); the private key is sealed like every
-- secret (AES-256-GCM, base64). `names` is the leaf's DNS names (JSON
-- array, lower-case), the names the certificate is served for. Dates are
-- RFC 3339 in UTC, like every timestamp.
CREATE TABLE edge_certificates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    names       TEXT NOT NULL,
    chain_pem   TEXT NOT NULL,
    key_sealed  TEXT NOT NULL,
    not_before  TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    -- SHA-256 of the leaf certificate (DER), lower-case hex.
    fingerprint TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL
);
