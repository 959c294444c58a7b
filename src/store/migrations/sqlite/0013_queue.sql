-- Work any host of the fleet may take (issue 21): a queued job with no
-- host yet is claimed by one (jobs.host set in the claiming transaction),
-- which rebuilds the work from `spec` (JSON); `affinity` names the only
-- host that may take it.
ALTER TABLE jobs ADD COLUMN spec TEXT;
ALTER TABLE jobs ADD COLUMN affinity TEXT;
CREATE INDEX jobs_waiting ON jobs(state, created_at);
