-- How many messages each relay has had acknowledged since its checkpoint last
-- started from the beginning of the log. A topic holding fewer messages than
-- this has lost some (a broker wiped or replaced), which the relay reports.
ALTER TABLE relay_checkpoints ADD COLUMN published bigint NOT NULL DEFAULT 0;
