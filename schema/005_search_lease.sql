-- Migration 5: one process at a time drives a search (xfer-search run).
-- worker names it as the run queue names its workers (host:pid:start),
-- lease_until (Unix seconds) is when its hold ends unless renewed (each
-- step and a heartbeat), heartbeat_at the last renewal. worker NULL: free
-- (finished, failed or given back; rows from before this migration too).
ALTER TABLE searches ADD COLUMN worker TEXT;
ALTER TABLE searches ADD COLUMN lease_until REAL;
ALTER TABLE searches ADD COLUMN heartbeat_at REAL;
