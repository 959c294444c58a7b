-- Boot files (issue 19): the ISO and microkernel stores, and OS images
-- (an ISO's contents extracted into a sealed dataset).

-- A stored file: its bytes are the blob `sha256` (blobs/sha256/..), which
-- the blob sweep keeps while a row names it.
CREATE TABLE bootfiles (
    kind        TEXT NOT NULL,             -- iso | microkernel
    name        TEXT NOT NULL,             -- checked like a tag: no '/', '..', NUL
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    source      TEXT NOT NULL,             -- upload | a path | a URL (credentials masked)
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE osimages (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    source_kind  TEXT NOT NULL,            -- upload | path | url | iso
    source       TEXT NOT NULL,            -- the path, URL (masked) or ISO name; '' for an upload
    iso          TEXT,                     -- the stored ISO it was made from (holds it)
    state        TEXT NOT NULL,            -- downloading | preparing | ready | failed
    progress     REAL NOT NULL DEFAULT 0,  -- 0..1 of the current state
    reason       TEXT,                     -- why it failed
    dataset      TEXT NOT NULL,            -- osimages/<uuid>: opaque, made for this image
    job_id       TEXT,
    size         INTEGER,                  -- bytes of the ISO
    sha256       TEXT,                     -- of the ISO
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
