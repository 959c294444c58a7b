//! One fleet over several hosts: what the other hosts sharing the store
//! changed, merged into this host's map. Each host's hangar is the truth
//! for the docks it holds; for the rest, the store's rows are, read by the
//! fleet clock (only what changed since the last look). An instance held by
//! a host that is down shows `unknown` until it docks again somewhere. An
//! instance that docked elsewhere after it docked here has left: the dock
//! here is a dead one not yet noticed, and is closed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{lock, Fleet, Outgoing, Status};
use crate::hangar::token::InstanceId;
use crate::store::instances::{FleetChanges, InstanceRow};

/// The fleet clock's number at which each dock this host holds was
/// committed (the writer records them): a row another host changed later
/// than that says the instance has docked there since.
#[derive(Default)]
pub(super) struct DockClocks(Mutex<HashMap<InstanceId, i64>>);

impl DockClocks {
    pub(super) fn committed(&self, id: InstanceId, clock: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, clock);
    }

    fn get(&self, id: &InstanceId) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    pub(super) fn forget(&self, id: &InstanceId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// What one merge did, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub rows: usize,
    pub deleted: usize,
    /// Docks here closed because the instance docked elsewhere since.
    pub handed_over: usize,
}

impl Fleet {
    /// This host's name, as its rows in the store carry it.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The fleet clock number this host has merged up to.
    pub fn clock(&self) -> i64 {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges what changed in the store since the last merge; `down`: the
    /// hosts that are down now. Blocking (reads the store).
    pub fn merge_changes(&self, down: &HashSet<String>) -> Result<Merged, super::FleetError> {
        let since = self.clock();
        let changes = self.catalog.with_store(|s| s.fleet_changes(since))?;
        let merged = self.merge(changes, down);
        Ok(merged)
    }

    fn merge(&self, changes: FleetChanges, down: &HashSet<String>) -> Merged {
        let mut merged = Merged {
            rows: changes.rows.len(),
            deleted: changes.deleted.len(),
            handed_over: 0,
        };
        for row in changes.rows {
            let Ok(id) = InstanceId::new(&row.id) else {
                continue;
            };
            let live = self.get_or_insert(&id);
            let mut live = lock(&live);
            let before = (live.status, live.panicked, live.alias.clone());
            live.alias = row.alias.clone();
            live.description = row.description.clone();
            live.panicked |= row.panicked;
            live.first_seen = live.first_seen.min(row.first_seen);
            if live.uplink_id.is_none() {
                live.uplink_id = row.uplink_id.clone();
            }
            match row.host.as_deref() {
                // What this host holds, its memory knows best.
                Some(host) if host == &*self.me => {}
                Some(host) => {
                    if let Some(session) = &live.session {
                        // Our dock is newer than the row (its write is not
                        // committed yet, or came after): it stays.
                        let ours = self.dock_clocks.get(&id);
                        if ours.is_none_or(|c| row.changed <= c) {
                            continue;
                        }
                        let _ = session
                            .tx
                            .try_send(Outgoing::Close("docked on another host"));
                        live.session = None;
                        live.remote = None;
                        self.dock_clocks.forget(&id);
                        live.event(&self.limits, "moved", format!("docked on host {host}"));
                        merged.handed_over += 1;
                    }
                    let said = Status::parse(&row.status).unwrap_or(Status::Unknown);
                    live.elsewhere = Some(said);
                    live.status = if down.contains(host) {
                        Status::Unknown
                    } else {
                        said
                    };
                    live.host = Some(self.host_name(host));
                    take_reported(&mut live, &row);
                }
                None if live.session.is_none() => {
                    live.elsewhere = None;
                    live.host = None;
                    live.status = Status::parse(&row.status).unwrap_or(Status::Unknown);
                    take_reported(&mut live, &row);
                }
                None => {}
            }
            if before != (live.status, live.panicked, live.alias.clone()) {
                self.announce(&id, &live);
            }
        }
        for id in changes.deleted {
            if let Ok(id) = InstanceId::new(&id) {
                self.forget_here(&id);
            }
        }
        self.mark_down(down);
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = changes.clock;
        merged
    }

    /// Shows instances held by a host that is down as `unknown`, and those
    /// of a host that is back as it said. Only when the set changed.
    fn mark_down(&self, down: &HashSet<String>) {
        {
            let mut last = self.down.lock().unwrap_or_else(|p| p.into_inner());
            if *last == *down {
                return;
            }
            *last = down.clone();
        }
        self.each_mut(|id, live| {
            let (Some(said), Some(host)) = (live.elsewhere, live.host.as_deref()) else {
                return;
            };
            let now = if down.contains(host) {
                Status::Unknown
            } else {
                said
            };
            if now != live.status {
                live.status = now;
                self.announce(id, live);
            }
        });
    }

    fn host_name(&self, name: &str) -> Arc<str> {
        intern(
            &mut self.host_names.lock().unwrap_or_else(|p| p.into_inner()),
            name,
        )
    }
}

/// One shared copy of each host's name (20,000 instances, a few hosts).
pub(super) fn intern(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(name);
    names.insert(n.clone());
    n
}

/// What the holder reported, as the row has it.
fn take_reported(live: &mut super::Live, row: &InstanceRow) {
    if live.ident != row.ident {
        live.ident.clone_from(&row.ident);
        // A deploy waiting for the instance's new IDENT sees this one.
        live.ident_seq += 1;
    }
    live.uplink.clone_from(&row.uplink);
    if row.image_id.is_some() {
        live.image_id.clone_from(&row.image_id);
    }
    live.last_seen = live.last_seen.max(row.last_seen);
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, Outgoing};
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::StoreDriver;
    use tokio::sync::mpsc;

    /// Two hosts' fleets on one store (SQLite here; PostgreSQL in
    /// tests/fleet_spread.rs).
    fn two_hosts(dir: &std::path::Path) -> (Fleet, Fleet) {
        let fleet = |name: &str| {
            let catalog = Catalog::open_on(dir, &StoreDriver::Sqlite, name).unwrap();
            Fleet::load(Arc::new(catalog), Limits::default()).unwrap()
        };
        (fleet("h1"), fleet("h2"))
    }

    fn dock(fleet: &Fleet, id: &InstanceId) -> mpsc::Receiver<Outgoing> {
        let (tx, rx) = mpsc::channel(4);
        fleet.connecting(id, "default");
        fleet.docked(id, "127.0.0.1:1".parse().unwrap(), tx);
        fleet.sync().unwrap();
        rx
    }

    fn seen(fleet: &Fleet, id: &InstanceId) -> (Status, Option<String>, bool) {
        fleet
            .with(id, |l| {
                (
                    l.status,
                    l.host.as_deref().map(str::to_string),
                    l.session.is_some(),
                )
            })
            .unwrap()
    }

    #[test]
    fn a_dock_elsewhere_moves_the_instance_and_closes_the_old_dock() {
        let dir = tempfile::tempdir().unwrap();
        let (h1, h2) = two_hosts(dir.path());
        let id = InstanceId::new("0123456789abcdef0123456789abcdef").unwrap();
        let none = HashSet::new();

        let mut old = dock(&h1, &id);
        h2.merge_changes(&none).unwrap();
        assert_eq!(
            seen(&h2, &id),
            (Status::Connected, Some("h1".into()), false)
        );
        // A merge of h1's own change leaves its dock alone.
        assert_eq!(h1.merge_changes(&none).unwrap().handed_over, 0);
        assert!(old.try_recv().is_err());

        // It docks at h2 (h1's dock is a dead one h1 has not noticed).
        let _new = dock(&h2, &id);
        let merged = h1.merge_changes(&none).unwrap();
        assert_eq!(merged.handed_over, 1);
        assert!(matches!(old.try_recv(), Ok(Outgoing::Close(_))));
        assert_eq!(
            seen(&h1, &id),
            (Status::Connected, Some("h2".into()), false)
        );
        // h2 down: h1 shows it unknown, and as it was once h2 is back.
        let down: HashSet<String> = ["h2".to_string()].into();
        h1.merge_changes(&down).unwrap();
        assert_eq!(seen(&h1, &id).0, Status::Unknown);
        h1.merge_changes(&none).unwrap();
        assert_eq!(seen(&h1, &id).0, Status::Connected);

        // Names set through h1 show on h2; a delete through h2 reaches h1.
        h1.update_names(&id, |_, d| (Some("edge".into()), d))
            .unwrap();
        h2.merge_changes(&none).unwrap();
        assert_eq!(h2.resolve("edge").unwrap(), id);
        h2.forget(&id).unwrap();
        h1.merge_changes(&none).unwrap();
        assert!(h1.is_empty());
    }

    #[test]
    fn a_host_that_starts_again_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let id = InstanceId::new("ab").unwrap();
        {
            let (h1, _) = two_hosts(dir.path());
            let _rx = dock(&h1, &id);
        }
        // h1 again: its instance is unknown to it and to h2, not connected.
        let (h1, h2) = two_hosts(dir.path());
        assert_eq!(seen(&h1, &id).0, Status::Unknown);
        assert_eq!(seen(&h2, &id), (Status::Unknown, None, false));
    }
}
