-- Launches as the fleet's work (issue 21). An instance jetpack launched
-- records the host whose pod runs it (`launched_on`) and the spread tag
-- it was launched with (`spread`): placement counts both. A host says
-- which hypervisors it can launch with (`hosts.launch`: comma-separated,
-- empty without the hypervisor base).
ALTER TABLE instances ADD COLUMN launched_on TEXT;
ALTER TABLE instances ADD COLUMN spread TEXT;
CREATE INDEX instances_launched_on ON instances(launched_on);
ALTER TABLE hosts ADD COLUMN launch TEXT NOT NULL DEFAULT '';
