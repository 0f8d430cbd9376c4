-- Warden schema v1 (SQLite). Forward-only; the PostgreSQL file with the same number matches it.
CREATE TABLE clients (
    client_id               TEXT PRIMARY KEY,
    metadata                TEXT NOT NULL,
    secret_hash             BLOB,
    registration_token_hash BLOB,
    origin                  TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    activate_at    INTEGER NOT NULL,
    publish_until  INTEGER
);

CREATE TABLE initial_access_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE artifacts (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    payload     BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    grant_id    TEXT,
    consumed_at INTEGER,
    PRIMARY KEY (kind, id)
);
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);
CREATE INDEX artifacts_grant_id ON artifacts (grant_id) WHERE grant_id IS NOT NULL;
