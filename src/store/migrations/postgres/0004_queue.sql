-- Work any host of the fleet may take (see sqlite/0013_queue.sql).
ALTER TABLE jobs ADD COLUMN spec TEXT;
ALTER TABLE jobs ADD COLUMN affinity TEXT;
CREATE INDEX jobs_waiting ON jobs(state, created_at);
