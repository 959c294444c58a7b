-- The jetpack hosts serving this fleet (one row on a lone host; one per
-- server when several share PostgreSQL). heartbeat_at is the database's
-- clock, in ms, so that hosts' clocks never decide who is down.
CREATE TABLE hosts (
    name         TEXT PRIMARY KEY,
    api_url      TEXT NOT NULL,
    hangar_url   TEXT NOT NULL,
    pool         TEXT NOT NULL,             -- root.zfs, or the dir driver's folder
    capacity     INTEGER NOT NULL,          -- jobs it runs at once (build.concurrency)
    version      TEXT NOT NULL,
    state        TEXT NOT NULL,             -- up | draining
    instances    INTEGER NOT NULL,          -- docked at its hangar at the last beat
    pods         INTEGER NOT NULL,          -- its pods at the last beat
    started_at   INTEGER NOT NULL,          -- s
    heartbeat_at INTEGER NOT NULL           -- ms, the database's clock
);
