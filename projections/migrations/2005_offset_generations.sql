-- The topic generation (event-store migration 1003) each stored offset
-- belongs to; 0 is the topic's first life.
ALTER TABLE projection_offsets ADD COLUMN generation bigint NOT NULL DEFAULT 0;
