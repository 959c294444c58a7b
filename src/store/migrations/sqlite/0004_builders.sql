-- Bob providers' lists as of their last update, and the builders prepared
-- from bobs (each a sealed base).
CREATE TABLE bob_lists (
    provider_id TEXT PRIMARY KEY,          -- a bob.provider.NAME of jetpack.conf
    bobs        TEXT NOT NULL,             -- JSON array, as the provider listed them
    updated_at  INTEGER NOT NULL
);

CREATE TABLE builders (
    id          TEXT PRIMARY KEY,          -- the bob's id
    base_id     TEXT NOT NULL UNIQUE REFERENCES bases(id),
    digest      TEXT NOT NULL UNIQUE,      -- sha256:HEX of the archive or OCI manifest
    provider_id TEXT NOT NULL,
    manifest    TEXT NOT NULL,             -- JSON: the base's /jetpack/builder.json
    created_at  INTEGER NOT NULL
);
