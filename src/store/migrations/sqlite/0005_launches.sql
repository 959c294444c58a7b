-- Instances jetpack launched itself (issue 15): each runs in its own pod,
-- under a supervisor that reads this row on every (re)start.
CREATE TABLE launches (
    instance_id TEXT PRIMARY KEY,          -- the id the instance reports (SMBIOS UUID)
    pod_id      TEXT NOT NULL UNIQUE,      -- the instance pod
    spec        TEXT NOT NULL,             -- JSON: launch::LaunchRecord
    wanted      TEXT NOT NULL,             -- running | stopped: what the operator asked last
    supervisor  INTEGER,                   -- pid of the supervisor while one runs
    created_at  INTEGER NOT NULL
);
