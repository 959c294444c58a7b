-- What `jetpack serve` keeps: uplinks, NaCls, snippets, images and jobs.
CREATE TABLE uplinks (
    id           TEXT PRIMARY KEY,         -- uuid
    name         TEXT NOT NULL UNIQUE,
    url          TEXT NOT NULL,            -- http(s)://host:port of a hangar
    token        TEXT NOT NULL,            -- what instances send as "key" at auth
    tag          TEXT,
    idx          TEXT,                     -- JSON: NIC index (number) or MAC (string)
    verify       INTEGER NOT NULL,
    reboot       INTEGER NOT NULL,
    ws_logging   INTEGER NOT NULL,
    serialize_ct INTEGER NOT NULL,
    certs        TEXT,
    send_stats   INTEGER NOT NULL,         -- ms between STATS, 0 = on request
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE nacls (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE snippets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE images (
    id                TEXT PRIMARY KEY,    -- sha1 (hex) of the binary
    sha256            TEXT NOT NULL,       -- its blob
    name              TEXT NOT NULL,
    tag               TEXT,
    size              INTEGER NOT NULL,
    builder_id        TEXT,
    nacl_id           TEXT,
    uplink_id         TEXT,
    uplink_url        TEXT,
    includeos_version TEXT,
    created_at        INTEGER NOT NULL
);
-- The default order of the list: newest first, ties by id, without a sort.
CREATE INDEX images_created ON images(created_at DESC, id);
CREATE INDEX images_sha256 ON images(sha256);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,          -- uuid
    kind        TEXT NOT NULL,             -- import | build | prepare | deploy ...
    target      TEXT,                      -- what it works on, for people
    state       TEXT NOT NULL,             -- queued | running | succeeded | failed | cancelled
    progress    REAL NOT NULL,             -- 0..1
    result      TEXT,                      -- JSON
    error       TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_created ON jobs(created_at DESC, id);
