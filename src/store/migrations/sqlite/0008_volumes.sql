-- A pod's own environment and volumes, and named volumes.
ALTER TABLE pods ADD COLUMN env TEXT NOT NULL DEFAULT '{}';      -- JSON object KEY -> VALUE
ALTER TABLE pods ADD COLUMN volumes TEXT NOT NULL DEFAULT '[]';  -- JSON array of {source, target, readOnly}

CREATE TABLE volumes (
    name        TEXT PRIMARY KEY,          -- its dataset is volumes/NAME
    created_at  INTEGER NOT NULL
);
