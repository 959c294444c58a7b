-- Which host has a stored ISO's or microkernel's blob (issue 21): another
-- host fetches it from there when it serves the file (NULL: this one,
-- from before hosts were recorded).
ALTER TABLE bootfiles ADD COLUMN host TEXT;
