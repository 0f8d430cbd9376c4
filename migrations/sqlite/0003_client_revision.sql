-- Optimistic concurrency for client updates: each update must name the revision it read.
ALTER TABLE clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
