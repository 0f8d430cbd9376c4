-- Protected resources (APIs) with their own access-token policy.
CREATE TABLE resources (
    audience              TEXT PRIMARY KEY,
    name                  TEXT,
    access_token_lifetime BIGINT,
    created_at            BIGINT NOT NULL
);
