-- Gateway consumers (apps known by an API key or a Basic password) and their API keys.
-- `name_key` is the lower-case name, unique among live consumers; a deleted consumer stays
-- as a tombstone (`deleted`, `name_key` NULL) so every gateway node learns of the deletion
-- by following `changed_at` (unix milliseconds, the writer's clock), as it follows revoked
-- tokens. Keys are stored only as their HMAC-SHA-256 under the master key; a revoked key
-- keeps its row (`revoked_at`). `password_hash` is an Argon2id PHC string (NULL: no Basic).
-- The PostgreSQL file with the same number matches it.
CREATE TABLE consumers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT UNIQUE,
    plan          TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    changed_at    BIGINT NOT NULL
);
CREATE INDEX consumers_changed_at ON consumers (changed_at);
CREATE TABLE consumer_keys (
    id          TEXT PRIMARY KEY,
    consumer_id TEXT NOT NULL REFERENCES consumers (id),
    key_hash    BLOB NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    changed_at  BIGINT NOT NULL
);
CREATE INDEX consumer_keys_changed_at ON consumer_keys (changed_at);
CREATE INDEX consumer_keys_consumer ON consumer_keys (consumer_id);
