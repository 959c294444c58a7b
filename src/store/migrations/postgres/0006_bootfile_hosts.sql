-- Which host has a stored boot file's blob (see sqlite/0015_bootfile_hosts.sql).
ALTER TABLE bootfiles ADD COLUMN host TEXT;
