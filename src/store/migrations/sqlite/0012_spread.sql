-- One fleet over several hosts (issue 21; on a lone host these stay
-- trivial). Every change to an instance row takes the next number of
-- fleet_clock, one per transaction, so that another host can read what
-- changed since the number it last saw; writes are serialised, so the
-- numbers commit in order.
ALTER TABLE instances ADD COLUMN host TEXT;                -- whose hangar holds its dock; NULL: none
ALTER TABLE instances ADD COLUMN status TEXT NOT NULL DEFAULT 'unknown'; -- as its holder last said
ALTER TABLE instances ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX instances_changed ON instances(changed);
-- Deleted instances, for the other hosts to forget them too (pruned after a day).
CREATE TABLE instance_deletions (
    id      TEXT NOT NULL,
    changed INTEGER NOT NULL,
    at      INTEGER NOT NULL                             -- s
);
CREATE INDEX instance_deletions_changed ON instance_deletions(changed);
CREATE TABLE fleet_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO fleet_clock (id, n) VALUES (1, 0);
-- Where a job runs (its log is there) and which host has an image's blob.
ALTER TABLE jobs ADD COLUMN host TEXT;
ALTER TABLE images ADD COLUMN host TEXT;
-- The SHA-256 of a host's API certificate: how the others know it is that host.
ALTER TABLE hosts ADD COLUMN api_pin TEXT NOT NULL DEFAULT '';
-- The secret hosts present to each other when one forwards a request.
CREATE TABLE fleet_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL
);
