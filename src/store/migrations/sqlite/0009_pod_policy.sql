-- What a pod's supervisor does when its command ends, whether the host
-- starts it at boot, and the host ports forwarded to it.
ALTER TABLE pods ADD COLUMN restart TEXT NOT NULL DEFAULT 'no';       -- no | on-failure | always
ALTER TABLE pods ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;      -- runs again since the last start
ALTER TABLE pods ADD COLUMN autostart INTEGER NOT NULL DEFAULT 0;     -- 1: started at boot and by `jetpack serve`
ALTER TABLE pods ADD COLUMN publish TEXT NOT NULL DEFAULT '[]';       -- JSON array of "[ADDR:]HOSTPORT:PORT/PROTO"
ALTER TABLE pods ADD COLUMN vnet INTEGER NOT NULL DEFAULT 0;          -- 1: its own network stack (FreeBSD VNET)
