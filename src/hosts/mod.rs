//! The fleet's hosts: this server's heartbeat into the store's hosts
//! table, and every host's status as the others see it. A host is `up`
//! while it beats, `draining` when told to take no new work, and `down`
//! once it has been silent for `host.down`; a down host may be forgotten
//! (`host rm`), an up one may not (it would be back at its next beat).

pub mod bases;
pub mod blobs;
pub mod job_log;
pub mod peer;
pub mod placement;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::catalog::Catalog;
use crate::store::hosts::{HostBeat, HostRow, HostState};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("no host {0:?}")]
    NoSuchHost(String),
    #[error("host {name} is {status}: it would be back at its next heartbeat; stop its server first (it is down {after:?} after its last)")]
    NotDown {
        name: String,
        status: HostStatus,
        after: Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("starting the heartbeat thread: {0}")]
    Thread(std::io::Error),
}

/// A host as the fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    Up,
    Draining,
    Down,
}

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostStatus::Up => "up",
            HostStatus::Draining => "draining",
            HostStatus::Down => "down",
        })
    }
}

#[derive(Debug, Clone)]
pub struct HostView {
    pub row: HostRow,
    pub status: HostStatus,
    /// This server's own row.
    pub me: bool,
}

/// A host as people are shown it: its view, and the instances jetpack
/// launched that run there (counted only for them: `list` serves routing
/// and placement, which read it often).
#[derive(Debug, Clone)]
pub struct HostReport {
    pub view: HostView,
    pub launched: u64,
}

/// What this server reports at each beat, measured then.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Instances docked at its hangar.
    pub instances: u64,
    pub pods: u64,
    /// The hypervisors it can launch with now (its base is there).
    pub launch: Vec<&'static str>,
}

pub type Measure = Box<dyn Fn() -> Measured + Send + Sync>;

pub struct Hosts {
    catalog: Arc<Catalog>,
    me: HostBeat,
    /// The API certificate's SHA-256 now (a SIGHUP may change it).
    api_pin: std::sync::Mutex<String>,
    measure: Measure,
    every: Duration,
    down_after: Duration,
    /// What hosts present to each other (`peer`); from the store.
    secret: String,
}

impl Hosts {
    pub fn new(
        catalog: Arc<Catalog>,
        me: HostBeat,
        measure: Measure,
        every: Duration,
        down_after: Duration,
    ) -> Result<Hosts, HostsError> {
        let secret = catalog.with_store(|s| s.fleet_secret())?;
        Ok(Hosts {
            catalog,
            api_pin: std::sync::Mutex::new(me.api_pin.clone()),
            me,
            measure,
            every,
            down_after,
            secret,
        })
    }

    /// Pins the API certificate the other hosts see at the next beat.
    pub fn set_api_pin(&self, pin: &str) {
        *self.api_pin.lock().unwrap_or_else(|p| p.into_inner()) = pin.to_string();
    }

    /// Whether `given` is the fleet's secret (a request another host sent).
    pub fn is_fleet_secret(&self, given: &[u8]) -> bool {
        bool::from(given.ct_eq(self.secret.as_bytes()))
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Another host that is up (or draining) to send a request to; None
    /// when it is this one, unknown, or down.
    pub fn peer(&self, name: &str) -> Result<Option<peer::Peer>, HostsError> {
        Ok(self.peers()?.into_iter().find(|p| p.name == name))
    }

    /// Every other host that is up (or draining), to send requests to.
    pub fn peers(&self) -> Result<Vec<peer::Peer>, HostsError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|h| !h.me && h.status != HostStatus::Down)
            .map(|h| peer::Peer {
                name: h.row.beat.name,
                api_url: h.row.beat.api_url,
                pin: h.row.beat.api_pin,
            })
            .collect())
    }

    pub fn name(&self) -> &str {
        &self.me.name
    }

    /// One heartbeat, now.
    pub fn beat(&self) -> Result<(), HostsError> {
        let now = (self.measure)();
        let beat = HostBeat {
            instances: now.instances,
            pods: now.pods,
            launch: now.launch.join(","),
            api_pin: self
                .api_pin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            ..self.me.clone()
        };
        self.catalog.with_store(|s| s.host_heartbeat(&beat))?;
        Ok(())
    }

    /// Beats every `host.heartbeat` on a thread of its own until the
    /// process ends; a failed beat is logged once until one succeeds.
    pub fn start(self: &Arc<Self>) -> Result<(), HostsError> {
        self.beat()?;
        let hosts = self.clone();
        std::thread::Builder::new()
            .name("jetpack-heartbeat".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    std::thread::sleep(hosts.every);
                    match hosts.beat() {
                        Ok(()) if failing => {
                            tracing::info!("heartbeat: the store answers again");
                            failing = false;
                        }
                        Ok(()) => {}
                        Err(e) if !failing => {
                            tracing::warn!("heartbeat failed: {e}; other hosts see this one as down after {:?}", hosts.down_after);
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(HostsError::Thread)?;
        Ok(())
    }

    fn status(&self, row: &HostRow) -> HostStatus {
        if row.silent_ms as u128 >= self.down_after.as_millis() {
            HostStatus::Down
        } else if row.state == HostState::Draining {
            HostStatus::Draining
        } else {
            HostStatus::Up
        }
    }

    pub fn list(&self) -> Result<Vec<HostView>, HostsError> {
        let rows = self.catalog.with_store(|s| s.hosts())?;
        Ok(rows
            .into_iter()
            .map(|row| HostView {
                status: self.status(&row),
                me: row.beat.name == self.me.name,
                row,
            })
            .collect())
    }

    /// `views` as people are shown them, with what was launched on each.
    pub fn report(&self, views: Vec<HostView>) -> Result<Vec<HostReport>, HostsError> {
        let counts = self.catalog.with_store(|s| s.launched_counts())?;
        Ok(views
            .into_iter()
            .map(|view| HostReport {
                launched: counts
                    .iter()
                    .filter(|c| c.host == view.row.beat.name)
                    .map(|c| c.n)
                    .sum(),
                view,
            })
            .collect())
    }

    /// One host as people are shown it.
    pub fn report_one(&self, view: HostView) -> Result<HostReport, HostsError> {
        let name = view.row.beat.name.clone();
        self.report(vec![view])?
            .pop()
            .ok_or(HostsError::NoSuchHost(name))
    }

    /// Every host as `list` has them, this one's hypervisors as they are
    /// now (its row may be a heartbeat old: a base imported since counts).
    pub fn list_now(&self) -> Result<Vec<HostView>, HostsError> {
        let mut hosts = self.list()?;
        if let Some(me) = hosts.iter_mut().find(|h| h.me) {
            me.row.beat.launch = (self.measure)().launch.join(",");
        }
        Ok(hosts)
    }

    pub fn get(&self, name: &str) -> Result<HostView, HostsError> {
        self.list()?
            .into_iter()
            .find(|h| h.row.beat.name == name)
            .ok_or_else(|| HostsError::NoSuchHost(name.to_string()))
    }

    /// Stops placing work on `name` (and, with `undo`, places it again).
    pub fn drain(&self, name: &str, undo: bool) -> Result<HostView, HostsError> {
        let state = if undo {
            HostState::Up
        } else {
            HostState::Draining
        };
        if !self.catalog.with_store(|s| s.set_host_state(name, state))? {
            return Err(HostsError::NoSuchHost(name.to_string()));
        }
        self.get(name)
    }

    /// Forgets a host that is down.
    pub fn remove(&self, name: &str) -> Result<HostView, HostsError> {
        let view = self.get(name)?;
        let silent = self.down_after.as_millis() as i64;
        match self
            .catalog
            .with_store(|s| s.delete_silent_host(name, silent))?
        {
            Some(true) => Ok(view),
            Some(false) => Err(HostsError::NotDown {
                name: name.to_string(),
                status: view.status,
                after: self.down_after,
            }),
            None => Err(HostsError::NoSuchHost(name.to_string())),
        }
    }
}
