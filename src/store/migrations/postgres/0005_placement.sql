-- Launches as the fleet's work (see sqlite/0014_placement.sql).
ALTER TABLE instances ADD COLUMN launched_on TEXT;
ALTER TABLE instances ADD COLUMN spread TEXT;
CREATE INDEX instances_launched_on ON instances(launched_on);
ALTER TABLE hosts ADD COLUMN launch TEXT NOT NULL DEFAULT '';
