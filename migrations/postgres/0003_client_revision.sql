-- Optimistic concurrency for client updates: each update must name the revision it read.
ALTER TABLE clients ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
