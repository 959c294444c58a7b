-- What one launch may have on a host (see sqlite/0016_host_size.sql).
ALTER TABLE hosts ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN cpus INTEGER NOT NULL DEFAULT 0;
