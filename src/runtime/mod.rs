//! The host runtime: bases and pods on this host. It ties the store (what
//! exists), the datasets backend (where it lives) and the jails backend (what
//! runs) together, with an undo for every step so that a failure leaves
//! nothing half-made (`undo`), and names what an undo could not remove. The
//! CLI's local commands and the server use it alike.
//!
//! `Host` is split by verb, one file each: `bases` (import, list, remove),
//! `pods` (create, start, stop, remove, reconcile), `process` (exec, run,
//! supervise, bounded and detached runs), `mds_link` (telling a running MDS
//! of pods), `volumes` (a pod's volumes, named volumes; `env` checks a
//! pod's environment), `snapshots` (a pod's snapshots, rollback, clone),
//! `export` (a base as a file and back). This file keeps `Host` itself, its construction, its errors and
//! the types the verbs share.

pub mod archive;
mod autostart;
mod bases;
pub mod datasets;
pub mod env;
pub mod export;
pub mod fetch_policy;
pub mod jails;
pub mod limits;
mod mds_link;
mod pods;
mod process;
pub mod restart;
mod snapshots;
mod supervise;
pub mod terminal;
pub mod tool;
mod undo;
pub mod volumes;

pub use bases::{BaseHolds, Holder, NoHolds};
pub use mds_link::{mds_socket, MdsLink};
pub use pods::PodOptions;
pub use supervise::note as note_in_log;
pub use undo::LeftBehind;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::config::Config;
use crate::names::NameError;
use crate::store::private::{self, Depth};
use crate::store::{BaseRow, PodRow, PodState, Store, StoreError};
use archive::ArchiveError;
use datasets::{DatasetError, Datasets};
use fetch_policy::{FetchPolicy, PolicyError};
use jails::{JailError, Jails};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("jetpack is not initialised at {0}: run `jetpack init` first")]
    NotInitialized(PathBuf),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Jail(#[from] JailError),
    #[error("publishing the pod's ports: {0}")]
    Publish(#[from] crate::net::publish::PublishError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Limits(#[from] limits::LimitsError),
    #[error("no base {0:?}")]
    NoSuchBase(String),
    #[error("no pod {0:?}")]
    NoSuchPod(String),
    #[error("{kind} {reference:?} is ambiguous: it matches {count}; give more of the id")]
    Ambiguous {
        kind: &'static str,
        reference: String,
        count: usize,
    },
    #[error("base {base} is in use by pod(s) {pods}; remove them first")]
    BaseInUse { base: String, pods: String },
    /// A layer above holds the base (a builder): see `BaseHolds`.
    #[error("base {base} is {} {}; {}", holder.kind, holder.id, holder.remedy)]
    BaseHeld { base: String, holder: Holder },
    #[error("base {0} is not ready (it is being imported or removed)")]
    BaseNotReady(String),
    #[error("pod {0} is running; kill it first or use --force")]
    PodRunning(String),
    #[error("pod {pod} is not running (it is {state})")]
    PodNotRunning { pod: String, state: PodState },
    #[error("pod {pod} is {state}: stop it (pod kill) before {what}")]
    PodActive {
        pod: String,
        state: PodState,
        what: &'static str,
    },
    #[error("pod {0} cannot start: it is {1}")]
    PodCannotStart(String, PodState),
    #[error("pod {pod}: command {program:?} not found in the pod")]
    CommandNotFound { pod: String, program: String },
    #[error("pod {pod}: cannot run {program:?}: {source}")]
    Spawn {
        pod: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A step failed and its undo could not remove everything it made.
    #[error("{cause} (and left behind: {left})")]
    LeftBehind {
        cause: Box<RuntimeError>,
        left: LeftBehind,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
}

/// What the host runtime needs besides jetpack.conf: how to run itself
/// (the Linux holder init and detached pod supervisors are this executable).
#[derive(Debug, Clone)]
pub struct HostEnv {
    pub exe: PathBuf,
    /// Global arguments that make a relaunched jetpack read the same
    /// configuration (`--config F`, `-o k=v`...).
    pub config_args: Vec<OsString>,
}

pub struct Host {
    config: Config,
    env: HostEnv,
    store: Mutex<Store>,
    datasets: Box<dyn Datasets>,
    jails: Box<dyn Jails>,
    mds: Option<MdsLink>,
    /// Where base imports may fetch URLs from (`base.import.allow`).
    fetch_policy: Arc<FetchPolicy>,
    /// Whether URLs are checked against it.
    url_sources: UrlSources,
    /// Annotations the MDS gives pods besides their own (a build's
    /// parameters), by pod id; kept while the pod exists.
    annotations: Mutex<std::collections::HashMap<String, Vec<(String, String)>>>,
}

/// Whose URLs a host imports bases from, and so whether they are checked
/// against `base.import.allow` (the SSRF policy, `fetch_policy`). Chosen
/// by whoever opens the host (`Host::open_for`, `Host::init_for`): it is
/// a property of who the host serves, not of how it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSources {
    /// Local commands, run by root on this host: the URLs are the
    /// operator's own, fetched as given, as a path is read as given. Root
    /// can reach anything from here anyway.
    Operator,
    /// The server: URLs come from API users, who must not reach the
    /// server's own ports or its neighbours through it.
    Users,
}

/// A pod as the runtime reports it: its row, and its dataset's mountpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Pod {
    #[serde(flatten)]
    pub row: PodRow,
    pub base_name: String,
    pub root: PathBuf,
    /// What it uses against its limits, when asked for (`Host::with_usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<limits::Usage>,
}

impl Pod {
    /// How users refer to it: its name, else its short id.
    pub fn label(&self) -> String {
        match &self.row.name {
            Some(n) => n.to_string(),
            None => self.row.id.short().to_string(),
        }
    }
}

/// How a pod's process gets its standard streams.
pub enum Attach {
    /// Inherit this process's streams.
    Inherit,
    /// A pseudo-terminal relayed to this process's streams.
    Terminal,
    /// Append stdout and stderr to a file; stdin is /dev/null.
    Log(PathBuf),
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its process exited with this code (128 + signal when killed).
    Exited(i32),
    TimedOut,
    Cancelled,
}

/// Outcome of an import: the base, and whether it was already there.
pub struct Imported {
    pub base: BaseRow,
    pub existed: bool,
}

impl Host {
    /// Opens the runtime over an initialised data dir for a local command:
    /// `open_for` with the operator's URLs (`UrlSources::Operator`).
    pub fn open(config: Config, env: HostEnv) -> Result<Host, RuntimeError> {
        Self::open_for(config, env, UrlSources::Operator)
    }

    /// Opens the runtime over an initialised data dir; its base imports
    /// take URLs from `urls`.
    pub fn open_for(config: Config, env: HostEnv, urls: UrlSources) -> Result<Host, RuntimeError> {
        // Before anything is created: see `store::private`.
        private::private_umask();
        let db = config.data_dir.join("state.db");
        if !db.exists() {
            return Err(RuntimeError::NotInitialized(config.data_dir.clone()));
        }
        Self::open_with_store(config, env, &db, urls)
    }

    fn open_with_store(
        config: Config,
        env: HostEnv,
        db: &Path,
        url_sources: UrlSources,
    ) -> Result<Host, RuntimeError> {
        // A bad entry stops the start: skipped, it would leave a mirror
        // unreachable or a range open without anyone knowing.
        let fetch_policy = Arc::new(FetchPolicy::parse(&config.base_import_allow)?);
        let store = Store::open(db)?;
        let datasets = datasets::open(&config)?;
        let jails = jails::open(&config, env.exe.clone())?;
        let mds = MdsLink::from_config(&config);
        Ok(Host {
            config,
            env,
            store: Mutex::new(store),
            datasets,
            jails,
            mds,
            fetch_policy,
            url_sources,
            annotations: Mutex::default(),
        })
    }

    /// `init_for` a local command (`jetpack init`): the operator's URLs
    /// (`UrlSources::Operator`).
    pub fn init(config: Config, env: HostEnv) -> Result<Host, RuntimeError> {
        Self::init_for(config, env, UrlSources::Operator)
    }

    /// Creates the root dataset, its children and the state database;
    /// idempotent. jetpack's own state is made private (0700 directories,
    /// 0600 files), and what an earlier start left looser is tightened.
    /// Its base imports take URLs from `urls` (the server: `Users`).
    pub fn init_for(config: Config, env: HostEnv, urls: UrlSources) -> Result<Host, RuntimeError> {
        // Before anything is created: see `store::private`.
        private::private_umask();
        datasets::open(&config)?.init()?;
        private::create_dir(&config.data_dir)
            .map_err(io_err(format!("creating {}", config.data_dir.display())))?;
        let tightened = tighten_own_state(&config)?;
        if tightened > 0 {
            tracing::warn!(
                "tightened modes of {tightened} path(s) under {} (they were open to group or others)",
                config.data_dir.display()
            );
        }
        let db = config.data_dir.join("state.db");
        Self::open_with_store(config, env, &db, urls)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn datasets(&self) -> &dyn Datasets {
        self.datasets.as_ref()
    }

    pub fn jails(&self) -> &dyn Jails {
        self.jails.as_ref()
    }

    /// How this host runs itself (the executable, the configuration's
    /// arguments): the server starts `jetpack mds` with it.
    pub fn env(&self) -> &HostEnv {
        &self.env
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What jetpack keeps under data.dir and the root mountpoint, and how far
/// `tighten_own_state` goes into each. The datasets folders are tightened
/// with their own files (markers) but not entered: below them are the
/// pods' root file systems, whose modes are their archives'.
const OWN_STATE: &[(&str, Depth)] = &[
    ("", Depth::Itself),
    ("state.db", Depth::Itself),
    ("state.db-wal", Depth::Itself),
    ("state.db-shm", Depth::Itself),
    ("state.db-journal", Depth::Itself),
    ("blobs", Depth::Tree),
    ("jobs", Depth::Tree),
    ("logs", Depth::Tree),
    ("tmp", Depth::Tree),
    ("uploads", Depth::Tree),
    ("disks", Depth::Tree),
    ("bases", Depth::Files),
    ("pods", Depth::Files),
    ("osimages", Depth::Files),
];

/// Takes group and other permissions off jetpack's own state (see
/// `OWN_STATE`); returns how many paths changed.
fn tighten_own_state(config: &Config) -> Result<usize, RuntimeError> {
    let mut roots = vec![config.data_dir.as_path()];
    if config.root_mountpoint != config.data_dir {
        roots.push(config.root_mountpoint.as_path());
    }
    let mut changed = 0;
    // A misconfigured "/" is left alone: 0700 there would lock every
    // other user out of the system.
    for root in roots.into_iter().filter(|r| r.parent().is_some()) {
        for (rel, depth) in OWN_STATE {
            let path = if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(rel)
            };
            changed += private::tighten(&path, *depth)
                .map_err(io_err(format!("tightening the mode of {}", path.display())))?;
        }
    }
    Ok(changed)
}
