-- Bases, pods and the addresses pods hold.
CREATE TABLE bases (
    id          TEXT PRIMARY KEY,          -- sha256 (hex) of the archive
    name        TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,             -- file path or URL it came from
    size        INTEGER NOT NULL,          -- archive bytes
    state       TEXT NOT NULL,             -- importing | ready | removing
    created_at  INTEGER NOT NULL
);

CREATE TABLE pods (
    id          TEXT PRIMARY KEY,          -- uuid
    name        TEXT UNIQUE,
    base_id     TEXT NOT NULL REFERENCES bases(id),
    command     TEXT NOT NULL,             -- JSON array of strings
    address     TEXT UNIQUE,               -- IPv4 in jail.ip4.range
    state       TEXT NOT NULL,             -- creating | created | running | stopping | exited | dead | removing
    cell        TEXT,                      -- jails driver handle while running
    exit_code   INTEGER,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

CREATE INDEX pods_base ON pods(base_id);
