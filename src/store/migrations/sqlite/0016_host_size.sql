-- What one launch may have on a host (its memory in MiB, its cpus), so
-- that placement seats a launch only where it fits. 0: not said (a host
-- of an older jetpack), which seats any launch, as before.
ALTER TABLE hosts ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN cpus INTEGER NOT NULL DEFAULT 0;
