-- The jetpack hosts sharing this database (see sqlite/0011_hosts.sql).
CREATE TABLE hosts (
    name         TEXT PRIMARY KEY,
    api_url      TEXT NOT NULL,
    hangar_url   TEXT NOT NULL,
    pool         TEXT NOT NULL,
    capacity     BIGINT NOT NULL,
    version      TEXT NOT NULL,
    state        TEXT NOT NULL,
    instances    BIGINT NOT NULL,
    pods         BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
