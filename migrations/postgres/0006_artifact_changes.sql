-- When an artifact was last written (unix milliseconds, the writer's clock), so a reader can
-- follow new revocations without a query per request: the gateway polls
-- `kind = 'revoked_jti' AND changed_at > cursor` (Artifacts::revoked_since). Rows from
-- before this migration count as written at 0. The file with the same number for the other
-- backend matches it.
ALTER TABLE artifacts ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX artifacts_kind_changed_at ON artifacts (kind, changed_at);
