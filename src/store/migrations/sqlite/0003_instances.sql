-- IncludeOS instances known through the hangar, and their panics.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,          -- what the instance authenticates with
    alias       TEXT,
    description TEXT,
    ident       TEXT,                      -- JSON: the last IDENT
    uplink      TEXT,                      -- JSON: the last UPLINK echo
    uplink_id   TEXT,                      -- the stored uplink whose token it authenticated with
    image_id    TEXT,                      -- SHA-1 of the binary it runs, when known
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);

CREATE TABLE panics (
    id          TEXT NOT NULL,             -- panic_<RFC 3339 time>.txt
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (instance_id, id)
);
