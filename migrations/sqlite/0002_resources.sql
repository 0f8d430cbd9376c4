-- Protected resources (APIs) with their own access-token policy.
CREATE TABLE resources (
    audience              TEXT PRIMARY KEY,
    name                  TEXT,
    access_token_lifetime INTEGER,
    created_at            INTEGER NOT NULL
);
