//! The fleet: every instance the hangar knows. What changes on every
//! message (status, recent log bytes, stats, events) is kept in memory,
//! bounded per instance; what must survive a restart (identity, IDENT,
//! UPLINK echo, the uplink it authenticated with, panics) goes to the store
//! through one writer thread that batches writes into transactions, so no
//! session ever waits for SQLite. After a restart every known instance is
//! `unknown` until it docks again (spec/uplink.md 7).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::mpsc;

use super::frame::{Code, Transport};
use super::token::InstanceId;
use crate::catalog::Catalog;
use crate::store::instances::{InstanceWrite, PanicRow};
use crate::store::{self, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Connected,
    Disconnected,
    Connecting,
    Unknown,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Connected,
        Status::Disconnected,
        Status::Connecting,
        Status::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
            Status::Connecting => "connecting",
            Status::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// How much of each instance is kept in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of LOG text per instance (a ring: the oldest go first).
    pub log_bytes: usize,
    /// STATS documents kept besides the latest.
    pub stats_history: usize,
    /// Events (docked, disconnected, panicked, updated...) per instance.
    pub events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            log_bytes: 16 * 1024,
            stats_history: 10,
            events: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unix time, milliseconds.
    pub at_ms: i64,
    pub event: &'static str,
    pub detail: String,
}

/// One STATS document as received: a JSON array, kept as its text (a
/// parsed value would cost several times the memory, for 20,000 instances).
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub at_ms: i64,
    pub json: Box<str>,
}

/// What the hangar may send to a docked instance.
#[derive(Debug)]
pub enum Outgoing {
    /// A transport (UPDATE with an image, a STATS request), encoded.
    Transport(Vec<u8>),
    /// End the session (the instance was deleted, or re-docked elsewhere).
    Close(&'static str),
}

#[derive(Debug, Clone)]
struct SessionHandle {
    generation: u64,
    tx: mpsc::Sender<Outgoing>,
}

/// One instance as the hangar sees it now.
#[derive(Debug)]
pub struct Live {
    pub status: Status,
    pub panicked: bool,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub ident: Option<serde_json::Value>,
    pub uplink: Option<serde_json::Value>,
    pub uplink_id: Option<String>,
    pub image_id: Option<String>,
    pub remote: Option<SocketAddr>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// LOG bytes ever received (`since` offsets count these), and the
    /// newest `log_bytes` of them.
    pub log_total: u64,
    pub log: VecDeque<u8>,
    pub stats: Option<StatsSample>,
    pub stats_history: VecDeque<StatsSample>,
    /// Counts IDENTs and STATS, so that a waiter can tell a new one.
    pub ident_seq: u64,
    pub stats_seq: u64,
    /// The last UPDATE acknowledgement (a SHA-1 hex) since a deploy sent one.
    pub update_ack: Option<String>,
    pub events: VecDeque<Event>,
    session: Option<SessionHandle>,
}

impl Live {
    fn new(now: i64) -> Live {
        Live {
            status: Status::Unknown,
            panicked: false,
            alias: None,
            description: None,
            ident: None,
            uplink: None,
            uplink_id: None,
            image_id: None,
            remote: None,
            first_seen: now,
            last_seen: now,
            log_total: 0,
            log: VecDeque::new(),
            stats: None,
            stats_history: VecDeque::new(),
            ident_seq: 0,
            stats_seq: 0,
            update_ack: None,
            events: VecDeque::new(),
            session: None,
        }
    }

    fn event(&mut self, limits: &Limits, event: &'static str, detail: String) {
        if self.events.len() >= limits.events {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at_ms: now_ms(),
            event,
            detail,
        });
    }

    /// A string field of the last IDENT.
    pub fn ident_str(&self, key: &str) -> Option<&str> {
        self.ident.as_ref()?.get(key)?.as_str()
    }

    /// IDENT's `binary`: the SHA-1 of the running image, only after a live update.
    pub fn binary(&self) -> Option<&str> {
        self.ident_str("binary")
    }

    /// The addresses of IDENT's `net` stacks.
    pub fn addresses(&self) -> Vec<String> {
        let net = self
            .ident
            .as_ref()
            .and_then(|i| i.get("net"))
            .and_then(|n| n.as_array());
        net.map(|stacks| {
            stacks
                .iter()
                .filter_map(|s| s.get("addr").and_then(|a| a.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn devices(&self) -> Vec<String> {
        let devices = self
            .ident
            .as_ref()
            .and_then(|i| i.get("devices"))
            .and_then(|d| d.as_array());
        devices
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The URL the instance reports in its UPLINK echo.
    pub fn uplink_url(&self) -> Option<&str> {
        self.uplink.as_ref()?.get("url")?.as_str()
    }

    pub fn session_generation(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.generation)
    }

    /// The newest log bytes after offset `since` (of all bytes ever
    /// received); returns them and the offset after them.
    pub fn log_since(&self, since: u64) -> (Vec<u8>, u64) {
        let first = self.log_total - self.log.len() as u64;
        let skip = since.saturating_sub(first).min(self.log.len() as u64) as usize;
        (
            self.log.iter().skip(skip).copied().collect(),
            self.log_total,
        )
    }
}

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

/// A message to the store writer thread (not a job: jobs are long operations).
enum WriterMsg {
    Write(InstanceWrite),
    /// Answered once every write queued before it is committed.
    Barrier(std_mpsc::Sender<()>),
}

pub struct Fleet {
    catalog: Arc<Catalog>,
    limits: Limits,
    instances: RwLock<HashMap<InstanceId, Arc<Mutex<Live>>>>,
    generation: AtomicU64,
    writer: Mutex<std_mpsc::Sender<WriterMsg>>,
    renaming: Mutex<()>,
}

fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Most writes per transaction.
const BATCH: usize = 1024;

fn run_writer(catalog: Arc<Catalog>, rx: std_mpsc::Receiver<WriterMsg>) {
    let mut writes = Vec::with_capacity(BATCH);
    let mut barriers = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                WriterMsg::Write(w) => writes.push(w),
                WriterMsg::Barrier(done) => barriers.push(done),
            }
            if writes.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            let batch = catalog.with_store(|s| s.apply_instance_writes(&writes));
            if let Err(e) = batch {
                // One bad write (a panic of an instance deleted meanwhile)
                // must not lose the others: apply them one by one.
                tracing::debug!("hangar batch failed ({e}); writing one by one");
                for w in &writes {
                    if let Err(e) =
                        catalog.with_store(|s| s.apply_instance_writes(std::slice::from_ref(w)))
                    {
                        tracing::warn!("hangar: dropped a store write: {e}");
                    }
                }
            }
            writes.clear();
        }
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
}

impl Fleet {
    /// Loads every known instance, all `unknown` until they dock again,
    /// and starts the store writer.
    pub fn load(catalog: Arc<Catalog>, limits: Limits) -> Result<Fleet, FleetError> {
        let rows = catalog.with_store(|s| s.instances())?;
        let panicked: std::collections::HashSet<String> = catalog
            .with_store(|s| s.instances_with_panics())?
            .into_iter()
            .collect();
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            let Ok(id) = InstanceId::new(&row.id) else {
                continue;
            };
            let mut live = Live::new(row.first_seen);
            live.panicked = panicked.contains(&row.id);
            live.last_seen = row.last_seen;
            live.alias = row.alias;
            live.description = row.description;
            live.ident = row.ident;
            live.uplink = row.uplink;
            live.uplink_id = row.uplink_id;
            live.image_id = row.image_id;
            map.insert(id, Arc::new(Mutex::new(live)));
        }
        let (tx, rx) = std_mpsc::channel();
        let writer_catalog = catalog.clone();
        std::thread::Builder::new()
            .name("hangar-store".into())
            .spawn(move || run_writer(writer_catalog, rx))
            .map_err(|e| FleetError::Spawn(e.to_string()))?;
        Ok(Fleet {
            catalog,
            limits,
            instances: RwLock::new(map),
            generation: AtomicU64::new(1),
            writer: Mutex::new(tx),
            renaming: Mutex::new(()),
        })
    }

    fn write(&self, w: InstanceWrite) {
        let tx = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(WriterMsg::Write(w)).is_err() {
            tracing::error!("hangar: the store writer has stopped; a write is lost");
        }
    }

    /// Waits until every write queued so far is committed. Blocking.
    pub fn sync(&self) -> Result<(), FleetError> {
        let (done, wait) = std_mpsc::channel();
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(WriterMsg::Barrier(done))
            .map_err(|_| FleetError::WriterGone)?;
        wait.recv().map_err(|_| FleetError::WriterGone)
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

    /// An instance authenticated with the token of uplink `uplink_id`.
    pub fn connecting(&self, id: &InstanceId, uplink_id: &str) {
        let live = self.get_or_insert(id);
        let mut live = lock(&live);
        if live.status != Status::Connected {
            live.status = Status::Connecting;
        }
        live.uplink_id = Some(uplink_id.to_string());
    }

    /// A dock is open: returns its generation. A previous session of the
    /// same instance (it re-authed before we noticed the old one die) is
    /// told to close.
    pub fn docked(&self, id: &InstanceId, remote: SocketAddr, tx: mpsc::Sender<Outgoing>) -> u64 {
        let now = store::now();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let live = self.get_or_insert(id);
        let mut live = lock(&live);
        if let Some(old) = live.session.take() {
            let _ = old.tx.try_send(Outgoing::Close("replaced by a newer dock"));
        }
        live.status = Status::Connected;
        live.remote = Some(remote);
        live.last_seen = now;
        live.session = Some(SessionHandle { generation, tx });
        live.event(&self.limits, "docked", remote.to_string());
        self.write(InstanceWrite::Docked {
            id: id.to_string(),
            uplink_id: live.uplink_id.clone(),
            at: now,
        });
        generation
    }

    /// A dock ended (closed, heartbeat lost, replaced, refused).
    pub fn undocked(&self, id: &InstanceId, generation: u64, why: &str) {
        let Some(live) = self.get(id) else {
            return;
        };
        let mut live = lock(&live);
        if live.session_generation() != Some(generation) {
            return;
        }
        live.session = None;
        live.status = Status::Disconnected;
        live.event(&self.limits, "disconnected", why.to_string());
    }

    /// Records a transport from a docked instance. Never blocks.
    pub fn received(&self, id: &InstanceId, t: Transport) {
        let Some(live) = self.get(id) else {
            return;
        };
        let mut live = lock(&live);
        let now = store::now();
        live.last_seen = now;
        match t.code {
            Code::Log => {
                live.log_total += t.payload.len() as u64;
                let cap = self.limits.log_bytes;
                let bytes = &t.payload[t.payload.len().saturating_sub(cap)..];
                let held = live.log.len();
                let overflow = (held + bytes.len()).saturating_sub(cap);
                live.log.drain(..overflow.min(held));
                live.log.extend(bytes);
            }
            Code::Stats => {
                let text = match std::str::from_utf8(&t.payload) {
                    Ok(text)
                        if serde_json::from_str::<Vec<serde::de::IgnoredAny>>(text).is_ok() =>
                    {
                        text
                    }
                    _ => {
                        self.malformed(&mut live, id, "bad-stats", "STATS is not a JSON array");
                        return;
                    }
                };
                let sample = StatsSample {
                    at_ms: now_ms(),
                    json: text.into(),
                };
                if let Some(old) = live.stats.replace(sample) {
                    if self.limits.stats_history > 0 {
                        if live.stats_history.len() >= self.limits.stats_history {
                            live.stats_history.pop_front();
                        }
                        live.stats_history.push_back(old);
                    }
                }
                live.stats_seq += 1;
            }
            Code::Ident => {
                let ident = match serde_json::from_slice(&t.payload) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => {
                        self.malformed(&mut live, id, "bad-ident", "IDENT is not a JSON object");
                        return;
                    }
                };
                live.ident = Some(ident);
                let binary = live.binary().map(str::to_string);
                if let Some(b) = &binary {
                    live.image_id = Some(b.clone());
                }
                live.ident_seq += 1;
                let detail = match (live.ident_str("version"), &binary) {
                    (Some(v), Some(b)) => format!("{v}, binary {b}"),
                    (Some(v), None) => v.to_string(),
                    (None, _) => String::new(),
                };
                live.event(&self.limits, "ident", detail);
                self.write(InstanceWrite::Ident {
                    id: id.to_string(),
                    ident: String::from_utf8_lossy(&t.payload).into_owned(),
                    image_id: binary,
                    at: now,
                });
            }
            Code::Uplink => match serde_json::from_slice::<serde_json::Value>(&t.payload) {
                Ok(v @ serde_json::Value::Object(_)) => {
                    live.uplink = Some(v);
                    self.write(InstanceWrite::Uplink {
                        id: id.to_string(),
                        uplink: String::from_utf8_lossy(&t.payload).into_owned(),
                    });
                }
                _ => {
                    self.malformed(&mut live, id, "bad-uplink", "UPLINK is not a JSON object");
                }
            },
            Code::Panic => {
                let panic_id = format!("panic_{}.txt", rfc3339_ms(now_ms()));
                live.panicked = true;
                live.event(&self.limits, "panicked", panic_id.clone());
                tracing::warn!(instance = %id, "instance reports a panic: {panic_id}");
                self.write(InstanceWrite::Panic(PanicRow {
                    id: panic_id,
                    instance_id: id.to_string(),
                    text: String::from_utf8_lossy(&t.payload).into_owned(),
                    created_at: now,
                }));
            }
            Code::Error => {
                let text = String::from_utf8_lossy(&t.payload)
                    .chars()
                    .take(200)
                    .collect();
                live.event(&self.limits, "error", text);
            }
            Code::Update => {
                let ack: String = String::from_utf8_lossy(&t.payload)
                    .chars()
                    .take(80)
                    .collect();
                live.event(&self.limits, "update-ack", ack.clone());
                live.update_ack = Some(ack);
            }
            Code::AppData | Code::Unknown(_) => {
                live.event(
                    &self.limits,
                    "ignored",
                    format!("transport code {}", t.code.as_u8()),
                );
                tracing::debug!(instance = %id, "ignored transport code {}", t.code.as_u8());
            }
        }
    }

    /// A transport that is not what the spec says it holds: noted on the
    /// instance and logged, then ignored (the session goes on).
    fn malformed(&self, live: &mut Live, id: &InstanceId, event: &'static str, what: &str) {
        live.event(&self.limits, event, what.to_string());
        tracing::warn!(instance = %id, "{what}; ignored");
    }

    /// Queues a transport to a docked instance.
    pub fn send(&self, id: &InstanceId, bytes: Vec<u8>) -> Result<(), FleetError> {
        let live = self
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.to_string()))?;
        let tx = lock(&live)
            .session
            .as_ref()
            .map(|s| s.tx.clone())
            .ok_or_else(|| FleetError::NotDocked(id.to_string()))?;
        tx.try_send(Outgoing::Transport(bytes))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => FleetError::Busy(id.to_string()),
                mpsc::error::TrySendError::Closed(_) => FleetError::NotDocked(id.to_string()),
            })
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
        let removed = self
            .instances
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .ok_or_else(|| FleetError::NotFound(id.to_string()))?;
        if let Some(s) = lock(&removed).session.take() {
            let _ = s.tx.try_send(Outgoing::Close("deleted"));
        }
        self.write(InstanceWrite::Delete { id: id.to_string() });
        self.sync()
    }

    /// Records the image an instance runs after a deploy. Blocking.
    pub fn set_image(&self, id: &InstanceId, image_id: &str) -> Result<(), FleetError> {
        self.with(id, |live| live.image_id = Some(image_id.to_string()))?;
        self.write(InstanceWrite::Image {
            id: id.to_string(),
            image_id: image_id.to_string(),
        });
        self.sync()
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
        Ok(())
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

    /// Ends every session (the server stops).
    pub fn close_all(&self) {
        self.each(|_, live| {
            if let Some(s) = &live.session {
                let _ = s.tx.try_send(Outgoing::Close("the server is stopping"));
            }
        });
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
    use crate::hangar::frame::Transport;

    fn fleet() -> (tempfile::TempDir, Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        let limits = Limits {
            log_bytes: 8,
            stats_history: 2,
            events: 3,
        };
        (dir, Fleet::load(catalog, limits).unwrap())
    }

    fn t(code: Code, payload: &[u8]) -> Transport {
        Transport {
            code,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn logs_stats_and_events_stay_bounded() {
        let (_dir, fleet) = fleet();
        let id = InstanceId::new("ab").unwrap();
        fleet.connecting(&id, "u");
        let (tx, _rx) = mpsc::channel(1);
        let g = fleet.docked(&id, "127.0.0.1:1".parse().unwrap(), tx);
        fleet.received(&id, t(Code::Log, b"0123456"));
        fleet.received(&id, t(Code::Log, b"789\xff"));
        for i in 0..5 {
            fleet.received(
                &id,
                t(
                    Code::Stats,
                    format!(r#"[{{"name":"n","value":{i}}}]"#).as_bytes(),
                ),
            );
        }
        fleet.received(&id, t(Code::Stats, b"not json"));
        fleet
            .with(&id, |l| {
                assert_eq!(l.log_total, 11);
                assert_eq!(l.log.iter().copied().collect::<Vec<_>>(), b"3456789\xff");
                assert_eq!(l.log_since(9), (b"9\xff".to_vec(), 11));
                assert_eq!(l.log_since(0).0.len(), 8);
                assert!(l.stats.as_ref().unwrap().json.contains("4"));
                assert_eq!(l.stats_history.len(), 2);
                assert_eq!(l.stats_seq, 5);
                let events: Vec<&str> = l.events.iter().map(|e| e.event).collect();
                assert_eq!(events, ["docked", "bad-stats"]);
            })
            .unwrap();
        fleet.undocked(&id, g + 1, "stale generation: ignored");
        assert_eq!(fleet.with(&id, |l| l.status).unwrap(), Status::Connected);
        fleet.undocked(&id, g, "closed");
        fleet.received(&id, t(Code::Unknown(3), b""));
        fleet
            .with(&id, |l| {
                assert_eq!(l.status, Status::Disconnected);
                // Bounded at 3: the oldest went.
                let events: Vec<&str> = l.events.iter().map(|e| e.event).collect();
                assert_eq!(events, ["bad-stats", "disconnected", "ignored"]);
            })
            .unwrap();
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
}
