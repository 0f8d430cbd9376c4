-- Store-wide facts every node and the CLI must agree on: the master-key check value, the
-- longest lifetime a token may have (for key retirement), the access-token algorithm in use.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
