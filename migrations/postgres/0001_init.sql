-- Warden schema v1 (PostgreSQL). Forward-only; the SQLite file with the same number matches it.
CREATE TABLE clients (
    client_id               TEXT PRIMARY KEY,
    metadata                TEXT NOT NULL,
    secret_hash             BYTEA,
    registration_token_hash BYTEA,
    origin                  TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    sealed_private BYTEA NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activate_at    BIGINT NOT NULL,
    publish_until  BIGINT
);

CREATE TABLE initial_access_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  BYTEA NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE artifacts (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL,
    grant_id    TEXT,
    consumed_at BIGINT,
    PRIMARY KEY (kind, id)
);
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);
CREATE INDEX artifacts_grant_id ON artifacts (grant_id) WHERE grant_id IS NOT NULL;
