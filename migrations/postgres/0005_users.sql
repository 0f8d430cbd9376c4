-- End-users who sign in at the provider. `id` is the subject (`sub`): random, never the
-- username, never reused. `username_key` is the lower-case form that makes usernames unique
-- case-insensitively; `claims` is the JSON object of the OIDC Core §5.1 standard claims;
-- `password_hash` an Argon2id PHC string (NULL: no password). The SQLite file with the
-- same number matches it.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    claims        TEXT NOT NULL,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
