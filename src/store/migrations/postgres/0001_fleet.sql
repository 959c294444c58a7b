-- The fleet's tables on PostgreSQL (store.driver = postgres): what every
-- jetpack host of one fleet shares. The final shape of SQLite's
-- 0002_server.sql .. 0007_netboot.sql, with the same columns in the same
-- order, keys, UNIQUE constraints, CHECKs and indexes. Integers are BIGINT
-- (the driver binds 64-bit integers; flags stay 0/1 BIGINT, not BOOLEAN),
-- REAL is DOUBLE PRECISION, JSON stays TEXT.
--
-- Not here: the runtime's tables (bases, pods, volumes). They describe one
-- host's datasets and jails and stay in that host's local SQLite file, so
-- builders.base_id names a base of the host that prepared the builder and
-- has no foreign key.

CREATE TABLE uplinks (
    id           TEXT PRIMARY KEY,         -- uuid
    name         TEXT NOT NULL UNIQUE,
    url          TEXT NOT NULL,            -- http(s)://host:port of a hangar
    token        TEXT NOT NULL,            -- what instances send as "key" at auth
    tag          TEXT,
    idx          TEXT,                     -- JSON: NIC index (number) or MAC (string)
    verify       BIGINT NOT NULL,
    reboot       BIGINT NOT NULL,
    ws_logging   BIGINT NOT NULL,
    serialize_ct BIGINT NOT NULL,
    certs        TEXT,
    send_stats   BIGINT NOT NULL,          -- ms between STATS, 0 = on request
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE nacls (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    content    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE snippets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    content    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE images (
    id                TEXT PRIMARY KEY,    -- sha1 (hex) of the binary
    sha256            TEXT NOT NULL,       -- its blob
    name              TEXT NOT NULL,
    tag               TEXT,
    size              BIGINT NOT NULL,
    builder_id        TEXT,
    nacl_id           TEXT,
    uplink_id         TEXT,
    uplink_url        TEXT,
    includeos_version TEXT,
    created_at        BIGINT NOT NULL,
    -- Insertion order, where SQLite has its rowid: two images stored in
    -- the same second are told apart by it (the newest with a tag is the
    -- one stored last: ORDER BY created_at DESC, seq DESC). Last, so that
    -- the columns above keep SQLite's positions.
    seq               BIGSERIAL NOT NULL UNIQUE
);
-- The default order of the list: newest first, ties by id, without a sort.
CREATE INDEX images_created ON images(created_at DESC, id);
CREATE INDEX images_sha256 ON images(sha256);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,          -- uuid
    kind        TEXT NOT NULL,             -- import | build | prepare | deploy ...
    target      TEXT,                      -- what it works on, for people
    state       TEXT NOT NULL,             -- queued | running | succeeded | failed | cancelled
    progress    DOUBLE PRECISION NOT NULL, -- 0..1
    result      TEXT,                      -- JSON
    error       TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);
CREATE INDEX jobs_created ON jobs(created_at DESC, id);

-- IncludeOS instances known through the hangar, and their panics.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,          -- what the instance authenticates with
    alias       TEXT,
    description TEXT,
    ident       TEXT,                      -- JSON: the last IDENT
    uplink      TEXT,                      -- JSON: the last UPLINK echo
    uplink_id   TEXT,                      -- the stored uplink whose token it authenticated with
    image_id    TEXT,                      -- SHA-1 of the binary it runs, when known
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);

CREATE TABLE panics (
    id          TEXT NOT NULL,             -- panic_<RFC 3339 time>.txt
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

-- Bob providers' lists as of their last update, and the builders prepared
-- from bobs (each a sealed base).
CREATE TABLE bob_lists (
    provider_id TEXT PRIMARY KEY,          -- a bob.provider.NAME of jetpack.conf
    bobs        TEXT NOT NULL,             -- JSON array, as the provider listed them
    updated_at  BIGINT NOT NULL
);

CREATE TABLE builders (
    id          TEXT PRIMARY KEY,          -- the bob's id
    base_id     TEXT NOT NULL UNIQUE,      -- a base in the preparing host's SQLite (no foreign key: see above)
    digest      TEXT NOT NULL UNIQUE,      -- sha256:HEX of the archive or OCI manifest
    provider_id TEXT NOT NULL,
    manifest    TEXT NOT NULL,             -- JSON: the base's /jetpack/builder.json
    created_at  BIGINT NOT NULL
);

-- Instances jetpack launched itself (issue 15): each runs in its own pod,
-- under a supervisor that reads this row on every (re)start.
CREATE TABLE launches (
    instance_id TEXT PRIMARY KEY,          -- the id the instance reports (SMBIOS UUID)
    pod_id      TEXT NOT NULL UNIQUE,      -- the instance pod
    spec        TEXT NOT NULL,             -- JSON: launch::LaunchRecord
    wanted      TEXT NOT NULL,             -- running | stopped: what the operator asked last
    supervisor  BIGINT,                    -- pid of the supervisor while one runs
    created_at  BIGINT NOT NULL
);

-- Boot files (issue 19): the ISO and microkernel stores, and OS images.
CREATE TABLE bootfiles (
    kind        TEXT NOT NULL,             -- iso | microkernel
    name        TEXT NOT NULL,             -- checked like a tag: no '/', '..', NUL
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    source      TEXT NOT NULL,             -- upload | a path | a URL (credentials masked)
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE osimages (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    source_kind  TEXT NOT NULL,            -- upload | path | url | iso
    source       TEXT NOT NULL,            -- the path, URL (masked) or ISO name; '' for an upload
    iso          TEXT,                     -- the stored ISO it was made from (holds it)
    state        TEXT NOT NULL,            -- downloading | preparing | ready | failed
    progress     DOUBLE PRECISION NOT NULL DEFAULT 0, -- 0..1 of the current state
    reason       TEXT,                     -- why it failed
    dataset      TEXT NOT NULL,            -- osimages/<uuid>: opaque, made for this image
    job_id       TEXT,
    size         BIGINT,                   -- bytes of the ISO
    sha256       TEXT,                     -- of the ISO
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Netboot (issue 19, item 4): which unikernel a machine booting with iPXE
-- gets, by its MAC: an image by id (no foreign key: it fails clearly once
-- the image is deleted) or a tag (the newest image with it).
CREATE TABLE netboot (
    mac         TEXT PRIMARY KEY,          -- aa:bb:cc:dd:ee:ff, lower case
    image_id    TEXT,                      -- a whole image id (40 hex)
    tag         TEXT,                      -- or a tag
    append      TEXT NOT NULL DEFAULT '',  -- the kernel command line (printable ASCII)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CHECK ((image_id IS NULL) <> (tag IS NULL))
);
