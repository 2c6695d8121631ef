-- sitewatch hub schema, version 7: accounts of the dashboard and the HTTP API (hub::auth).
--
-- These tables are written rarely (a login, a logout, an account or token change), so they
-- are NOT written by the writer thread: hub::store::auth writes them in short IMMEDIATE
-- transactions on a connection of its own (busy_timeout 5 s); SQLite's WAL serialises them
-- with the writer. See docs/ARCHITECTURE.md. No secret is stored in clear: passwords as
-- argon2id PHC strings, session cookies and API token secrets as SHA-256 digests.

-- A person who can log in. `admin` may change things (acknowledge, silence, rename
-- devices, manage accounts); `viewer` only reads.
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

-- A logged-in browser. `id_hash` is the SHA-256 of the session cookie's value; `csrf` the
-- token the dashboard sends back in `X-CSRF-Token` on every change.
CREATE TABLE sessions (
    id_hash    BLOB    PRIMARY KEY,
    user       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);

-- A bearer token for scripts: `swt_<id>_<secret>`; only the secret's SHA-256 is kept.
CREATE TABLE api_tokens (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    secret_hash BLOB    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
);
