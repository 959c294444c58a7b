//! The fleet: every instance the hangar knows. What changes on every
//! message (status, recent log bytes, stats, events) is kept in memory,
//! bounded per instance; what must survive a restart (identity, IDENT,
//! UPLINK echo, the uplink it authenticated with, panics) goes to the store
//! through one writer thread that batches writes into transactions, so no
//! session ever waits for SQLite. After a restart every known instance is
//! `unknown` until it docks again (spec/uplink.md 7).
//!
//! This file owns the map of instances and what reads or changes one by
//! name (resolve, names, forget, panics) and the per-instance deploy lock;
//! - `live`: one instance's state in memory, and the reading of its IDENT
//! - `receive`: what docked instances send, and what is sent to them
//! - `writer`: the store writer thread
//! - `query`: search, filter, order and page the fleet for lists

mod live;
pub mod query;
mod receive;
mod spread;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use live::SessionHandle;
pub use live::{tail_start, Event, IdentFields, Limits, Live, Outgoing, StatsSample, Status};
pub use query::{InstanceQuery, InstanceView, Sort};
use spread::DockClocks;
pub use spread::Merged;
use writer::Writer;

use super::token::InstanceId;
use crate::catalog::Catalog;
use crate::events::Events;
use crate::store::instances::{InstanceWrite, PanicRow};
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no instance {0:?}")]
    NotFound(String),
    #[error("{0:?} matches several instances: {1}")]
    Ambiguous(String, String),
    #[error("instance {other} has the alias {alias:?} already")]
    AliasTaken { alias: String, other: String },
    #[error("instance {0} is not docked")]
    NotDocked(String),
    #[error("instance {0} is busy: its outgoing queue is full")]
    Busy(String),
    #[error("starting the hangar's store writer: {0}")]
    Spawn(String),
    #[error("the hangar's store writer has stopped")]
    WriterGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Fleet {
    catalog: Arc<Catalog>,
    limits: Limits,
    instances: RwLock<HashMap<InstanceId, Arc<Mutex<Live>>>>,
    generation: AtomicU64,
    writer: Writer,
    renaming: Mutex<()>,
    deploys: DeployLocks,
    /// Told when an instance runs a new image (after an acknowledged
    /// deploy): the launch layer makes it the image a restart boots.
    on_image: std::sync::OnceLock<ImageListener>,
    /// Where status changes, panics and removals are announced.
    events: std::sync::OnceLock<Arc<Events>>,
    /// This host's name in the fleet (spread.rs: hosts sharing the store).
    me: Arc<str>,
    /// The fleet clock number merged up to.
    clock: Mutex<i64>,
    dock_clocks: Arc<DockClocks>,
    /// The hosts that were down at the last merge.
    down: Mutex<HashSet<String>>,
    host_names: Mutex<HashSet<Arc<str>>>,
}

/// Who hears of an instance's new image; its failure is only logged (the
/// deploy itself succeeded).
pub type ImageListener = Box<dyn Fn(&InstanceId, &str) -> Result<(), String> + Send + Sync>;

fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Fleet {
    /// Loads every known instance and starts the store writer. Those this
    /// host held are `unknown` until they dock again (so the store says,
    /// for the other hosts too); those another host holds are as it says.
    pub fn load(catalog: Arc<Catalog>, limits: Limits) -> Result<Fleet, FleetError> {
        let me: Arc<str> = Arc::from(catalog.host());
        catalog.with_store(|s| s.release_instances_of(&me))?;
        let clock = catalog.with_store(|s| s.fleet_clock())?;
        let rows = catalog.with_store(|s| s.instances())?;
        let mut host_names = HashSet::new();
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            let Ok(id) = InstanceId::new(&row.id) else {
                continue;
            };
            let mut live = Live::new(row.first_seen);
            live.panicked = row.panicked;
            if let Some(host) = row.host.as_deref() {
                let said = Status::parse(&row.status).unwrap_or(Status::Unknown);
                let name = spread::intern(&mut host_names, host);
                // Whether its host is up is the first merge's business.
                live.status = said;
                live.elsewhere = Some(said);
                live.host = Some(name);
            }
            live.last_seen = row.last_seen;
            live.alias = row.alias;
            live.description = row.description;
            live.ident = row.ident;
            live.uplink = row.uplink;
            live.uplink_id = row.uplink_id;
            live.image_id = row.image_id;
            map.insert(id, Arc::new(Mutex::new(live)));
        }
        let dock_clocks = Arc::new(DockClocks::default());
        let writer = Writer::spawn(catalog.clone(), dock_clocks.clone())?;
        Ok(Fleet {
            catalog,
            limits,
            instances: RwLock::new(map),
            generation: AtomicU64::new(1),
            writer,
            renaming: Mutex::new(()),
            deploys: DeployLocks::default(),
            on_image: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
            me,
            clock: Mutex::new(clock),
            dock_clocks,
            down: Mutex::new(HashSet::new()),
            host_names: Mutex::new(host_names),
        })
    }

    /// Waits until every write queued so far is committed. Blocking.
    pub fn sync(&self) -> Result<(), FleetError> {
        self.writer.sync()
    }

    fn get(&self, id: &InstanceId) -> Option<Arc<Mutex<Live>>> {
        self.instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn get_or_insert(&self, id: &InstanceId) -> Arc<Mutex<Live>> {
        if let Some(live) = self.get(id) {
            return live;
        }
        self.instances
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Live::new(store::now()))))
            .clone()
    }

    /// An instance, by id, alias or an unambiguous id prefix.
    pub fn resolve(&self, reference: &str) -> Result<InstanceId, FleetError> {
        let not_found = || FleetError::NotFound(reference.chars().take(80).collect());
        if reference.is_empty() || reference.len() > 128 {
            return Err(not_found());
        }
        let lower = reference.to_ascii_lowercase();
        let map = self.instances.read().unwrap_or_else(|p| p.into_inner());
        if let Ok(id) = InstanceId::new(&lower) {
            if map.contains_key(&id) {
                return Ok(id);
            }
        }
        let mut hits: Vec<&InstanceId> = map
            .iter()
            .filter(|(_, live)| lock(live).alias.as_deref() == Some(reference))
            .map(|(id, _)| id)
            .collect();
        if hits.is_empty() {
            hits = map
                .keys()
                .filter(|id| id.as_str().starts_with(&lower))
                .collect();
        }
        match hits.len() {
            0 => Err(not_found()),
            1 => Ok(hits[0].clone()),
            _ => {
                let mut names: Vec<&str> = hits.iter().map(|id| id.as_str()).collect();
                names.sort();
                names.truncate(5);
                Err(FleetError::Ambiguous(
                    reference.to_string(),
                    names.join(", "),
                ))
            }
        }
    }

    /// Runs `f` on one instance.
    pub fn with<T>(
        &self,
        id: &InstanceId,
        f: impl FnOnce(&mut Live) -> T,
    ) -> Result<T, FleetError> {
        let live = self
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.to_string()))?;
        let mut live = lock(&live);
        Ok(f(&mut live))
    }

    /// Notes an event on an instance (a deploy's progress).
    pub fn note(&self, id: &InstanceId, event: &'static str, detail: String) {
        if let Some(live) = self.get(id) {
            lock(&live).event(&self.limits, event, detail);
        }
    }

    /// Runs `f` on every instance (for lists and summaries).
    pub fn each(&self, mut f: impl FnMut(&InstanceId, &Live)) {
        let map = self.instances.read().unwrap_or_else(|p| p.into_inner());
        for (id, live) in map.iter() {
            f(id, &lock(live));
        }
    }

    /// Runs `f` on every instance, to change it (the merge of other hosts').
    fn each_mut(&self, mut f: impl FnMut(&InstanceId, &mut Live)) {
        let map = self.instances.read().unwrap_or_else(|p| p.into_inner());
        for (id, live) in map.iter() {
            f(id, &mut lock(live));
        }
    }

    /// How many instances this host's hangar holds a dock of.
    pub fn docked_here(&self) -> usize {
        let mut n = 0;
        self.each(|_, l| n += usize::from(l.session.is_some()));
        n
    }

    pub fn len(&self) -> usize {
        self.instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets an instance: closes its session, deletes what is stored.
    /// Blocking (waits for the store).
    pub fn forget(&self, id: &InstanceId) -> Result<(), FleetError> {
        if !self.forget_here(id) {
            return Err(FleetError::NotFound(id.to_string()));
        }
        self.writer
            .write(InstanceWrite::Delete { id: id.to_string() });
        self.sync()
    }

    /// Drops an instance from memory, closing its dock; false if it was
    /// not there. (Deleted through another host, it is gone from the store.)
    fn forget_here(&self, id: &InstanceId) -> bool {
        let Some(removed) = self
            .instances
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        else {
            return false;
        };
        if let Some(s) = lock(&removed).session.take() {
            let _ = s.tx.try_send(Outgoing::Close("deleted"));
        }
        self.dock_clocks.forget(id);
        if let Some(events) = self.events.get() {
            events.instance_removed(id.as_str());
        }
        true
    }

    /// Forgets each of `ids` (resolved already) and returns what they were;
    /// one deleted meanwhile by someone else is gone all the same, and left
    /// out. Blocking.
    pub fn forget_all(&self, ids: &[InstanceId]) -> Result<Vec<InstanceView>, FleetError> {
        let mut gone = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(view) = self.with(id, |l| InstanceView::of(id, l)) else {
                continue;
            };
            match self.forget(id) {
                Ok(()) => gone.push(view),
                Err(FleetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.add_nacls(&mut gone)?;
        Ok(gone)
    }

    /// Records the image an instance runs after a deploy. Blocking.
    pub fn set_image(&self, id: &InstanceId, image_id: &str) -> Result<(), FleetError> {
        self.with(id, |live| {
            live.image_id = Some(image_id.to_string());
            self.announce(id, live);
        })?;
        self.writer.write(InstanceWrite::Image {
            id: id.to_string(),
            image_id: image_id.to_string(),
        });
        self.sync()?;
        if let Some(listener) = self.on_image.get() {
            if let Err(why) = listener(id, image_id) {
                tracing::warn!("instance {id} runs image {image_id}, but {why}");
            }
        }
        Ok(())
    }

    /// Sets where changes are announced (once; later calls are ignored).
    pub fn publish_to(&self, events: Arc<Events>) {
        let _ = self.events.set(events);
    }

    /// Announces an instance's status, panic flag, names or image.
    fn announce(&self, id: &InstanceId, live: &Live) {
        if let Some(events) = self.events.get() {
            events.instance(id.as_str(), live.status.as_str(), live.panicked);
        }
    }

    /// Sets who hears of new images (once; later calls are ignored).
    pub fn on_image(&self, listener: ImageListener) {
        let _ = self.on_image.set(listener);
    }

    /// Changes alias and description: `change` gets the current ones and
    /// gives the new ones. Renames are serialised, so that no two
    /// instances can take one alias. Blocking.
    pub fn update_names(
        &self,
        id: &InstanceId,
        change: impl FnOnce(Option<String>, Option<String>) -> (Option<String>, Option<String>),
    ) -> Result<(), FleetError> {
        let live = self
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.to_string()))?;
        let _renaming = self.renaming.lock().unwrap_or_else(|p| p.into_inner());
        let (alias, description) = {
            let l = lock(&live);
            change(l.alias.clone(), l.description.clone())
        };
        if let Some(wanted) = &alias {
            let mut taken_by = None;
            self.each(|other, l| {
                if other != id && l.alias.as_deref() == Some(wanted.as_str()) {
                    taken_by = Some(other.to_string());
                }
            });
            if let Some(other) = taken_by {
                return Err(FleetError::AliasTaken {
                    alias: wanted.clone(),
                    other,
                });
            }
        }
        self.sync()?;
        self.catalog.with_store(|s| {
            s.set_instance_names(id.as_str(), alias.as_deref(), description.as_deref())
        })?;
        let mut live = lock(&live);
        live.alias = alias;
        live.description = description;
        self.announce(id, &live);
        Ok(())
    }

    /// Refuses an alias another instance has (before a launch makes one).
    pub fn alias_free(&self, alias: &str) -> Result<(), FleetError> {
        let mut taken_by = None;
        self.each(|other, l| {
            if l.alias.as_deref() == Some(alias) {
                taken_by = Some(other.to_string());
            }
        });
        match taken_by {
            Some(other) => Err(FleetError::AliasTaken {
                alias: alias.to_string(),
                other,
            }),
            None => Ok(()),
        }
    }

    /// Knows an instance before it docks (one jetpack launched), with its
    /// alias; it docks later as any other. Blocking.
    pub fn adopt(&self, id: &InstanceId, alias: Option<&str>) -> Result<(), FleetError> {
        let _renaming = self.renaming.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(alias) = alias {
            self.alias_free(alias)?;
        }
        let now = store::now();
        self.get_or_insert(id);
        self.writer.write(InstanceWrite::Docked {
            id: id.to_string(),
            uplink_id: None,
            host: None,
            at: now,
        });
        self.sync()?;
        if let Some(alias) = alias {
            self.catalog
                .with_store(|s| s.set_instance_names(id.as_str(), Some(alias), None))?;
            self.with(id, |l| l.alias = Some(alias.to_string()))?;
        }
        Ok(())
    }

    /// The host whose pod runs instance `id`, when jetpack launched it.
    pub fn launched_on(&self, id: &InstanceId) -> Result<Option<String>, store::StoreError> {
        self.catalog
            .with_store(|s| s.instance_launched_on(id.as_str()))
    }

    /// An instance's panics, newest first. Blocking.
    pub fn panics(&self, id: &InstanceId) -> Result<Vec<PanicRow>, FleetError> {
        self.sync()?;
        Ok(self.catalog.with_store(|s| s.panics(id.as_str()))?)
    }

    pub fn panic(&self, id: &InstanceId, panic_id: &str) -> Result<PanicRow, FleetError> {
        self.sync()?;
        self.catalog
            .with_store(|s| s.panic(id.as_str(), panic_id))?
            .ok_or_else(|| FleetError::NotFound(format!("{id}/{panic_id}")))
    }
}

/// Why an alias is refused, if it is. Aliases name instances wherever
/// ids do, so they must never read as one.
pub fn check_alias(alias: &str) -> Result<(), String> {
    let len = alias.chars().count();
    if !(1..=64).contains(&len) {
        return Err(format!("alias {alias:?}: 1 to 64 characters"));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "alias {alias:?}: only letters, digits, '.', '_' and '-'"
        ));
    }
    // Instances are found by id, alias or id prefix: an alias that could
    // be an id (or a prefix of one) would hide or be hidden by it.
    if alias.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(format!(
            "alias {alias:?} reads as an instance id: it needs a letter other than a-f, a '.' or a '_'"
        ));
    }
    // GET /v1/instances/summary is the counts, never an instance.
    if alias == "summary" {
        return Err("alias \"summary\" is reserved".into());
    }
    Ok(())
}

pub fn check_description(description: &str) -> Result<(), String> {
    if description.chars().count() > 1024 {
        return Err("description: up to 1024 characters".into());
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("description: no control characters but newlines and tabs".into());
    }
    Ok(())
}

/// One deploy or upgrade per instance at a time: a second one would race
/// the first for the instance's acknowledgement. Held while a deploy is
/// checked against the jobs in progress and submitted, so that two
/// requests cannot both find none; other instances are not held up.
#[derive(Default)]
struct DeployLocks {
    held: Mutex<HashSet<InstanceId>>,
    freed: Condvar,
}

/// An instance's deploy lock, released on drop.
pub struct DeployLock<'a> {
    locks: &'a DeployLocks,
    id: InstanceId,
}

impl Drop for DeployLock<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.id);
        self.locks.freed.notify_all();
    }
}

impl Fleet {
    /// Takes `id`'s deploy lock, waiting while another request holds it.
    /// Blocking (briefly: holders only check and submit).
    pub fn deploy_lock(&self, id: &InstanceId) -> DeployLock<'_> {
        let locks = &self.deploys;
        let mut held = locks.held.lock().unwrap_or_else(|p| p.into_inner());
        while held.contains(id) {
            held = locks.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        held.insert(id.clone());
        DeployLock {
            locks,
            id: id.clone(),
        }
    }
}

/// RFC 3339 UTC with milliseconds, for panic ids (two panics in one second
/// stay apart).
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hangar::frame::{Code, Transport};
    use tokio::sync::mpsc;

    fn t(code: Code, payload: &[u8]) -> Transport {
        Transport {
            code,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn what_is_stored_comes_back_unknown_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        let id = InstanceId::new("0123456789abcdef0123456789abcdef").unwrap();
        {
            let fleet = Fleet::load(catalog.clone(), Limits::default()).unwrap();
            fleet.connecting(&id, "default");
            let (tx, _rx) = mpsc::channel(1);
            fleet.docked(&id, "127.0.0.1:1".parse().unwrap(), tx);
            fleet.received(
                &id,
                t(
                    Code::Ident,
                    br#"{"uuid":"x","version":"v0.14","net":[{"addr":"10.0.0.42"}]}"#,
                ),
            );
            fleet.received(&id, t(Code::Uplink, br#"{"url":"http://h:9090"}"#));
            fleet.received(&id, t(Code::Panic, b"PANIC: \xffboom"));
            fleet.received(&id, t(Code::Ident, b"[not an object]"));
            fleet
                .update_names(&id, |_, d| (Some("edge".into()), d))
                .unwrap();
            let other = InstanceId::new("ff").unwrap();
            fleet.connecting(&other, "default");
            assert!(matches!(
                fleet.update_names(&other, |_, d| (Some("edge".into()), d)),
                Err(FleetError::AliasTaken { .. })
            ));
            assert_eq!(fleet.panics(&id).unwrap().len(), 1);
        }
        let fleet = Fleet::load(catalog, Limits::default()).unwrap();
        assert_eq!(fleet.resolve("edge").unwrap(), id);
        assert_eq!(fleet.resolve("0123").unwrap(), id);
        assert!(matches!(
            fleet.resolve("ffff"),
            Err(FleetError::NotFound(_))
        ));
        fleet
            .with(&id, |l| {
                assert_eq!(l.status, Status::Unknown);
                assert_eq!(l.addresses(), vec!["10.0.0.42"]);
                assert_eq!(l.uplink_url(), Some("http://h:9090"));
                assert_eq!(l.uplink_id.as_deref(), Some("default"));
                assert!(l.panicked, "a stored panic keeps the flag");
            })
            .unwrap();
        let panics = fleet.panics(&id).unwrap();
        assert!(panics[0].text.contains("boom"));
        fleet.forget(&id).unwrap();
        assert!(fleet.panics(&id).unwrap().is_empty());
        assert!(fleet.is_empty());
    }

    #[test]
    fn a_deploy_lock_holds_its_instance_only() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        let fleet = Arc::new(Fleet::load(catalog, Limits::default()).unwrap());
        let (a, b) = (
            InstanceId::new("aa").unwrap(),
            InstanceId::new("bb").unwrap(),
        );
        let held = fleet.deploy_lock(&a);
        // Another instance is not held up.
        drop(fleet.deploy_lock(&b));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (fleet, a) = (fleet.clone(), a.clone());
            std::thread::spawn(move || {
                let _second = fleet.deploy_lock(&a);
                tx.send(()).unwrap();
            })
        };
        let wait = std::time::Duration::from_millis(100);
        assert!(rx.recv_timeout(wait).is_err(), "the same instance waits");
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn aliases_are_names_that_cannot_be_ids() {
        for good in [
            "edge",
            "edge-1.eu_west",
            "Z",
            "a".repeat(64).replace('a', "g").as_str(),
        ] {
            assert!(check_alias(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "dead-beef",
            "0123",
            "summary",
            "has space",
            "../x",
            "é",
            &"g".repeat(65),
        ] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
        assert!(check_description(&"x".repeat(1024)).is_ok());
        assert!(check_description("two\nlines\tand a tab").is_ok());
        assert!(check_description(&"x".repeat(1025)).is_err());
        assert!(check_description("bell\u{7}").is_err());
    }
}
