-- A pod's resource limits, and why it ended when the kernel ended it.
ALTER TABLE pods ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';  -- JSON object {memory, cpus, pids, disk, maxproc}
ALTER TABLE pods ADD COLUMN exit_reason TEXT;                   -- e.g. "killed: out of memory (limit 64 MiB)"
