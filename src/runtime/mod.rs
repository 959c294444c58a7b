//! The host runtime: bases and pods on this host. It ties the store (what
//! exists), the datasets backend (where it lives) and the jails backend (what
//! runs) together, with an undo for every step so that a failure leaves
//! nothing half-made. The CLI's local commands and the server use it alike.

pub mod archive;
pub mod datasets;
pub mod fetch_policy;
pub mod jails;
pub mod terminal;
pub mod tool;

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::names::{BaseId, DatasetName, Name, NameError, PodId};
use crate::store::private::{self, Depth};
use crate::store::{self, BaseRow, BaseState, PodRow, PodState, Store, StoreError};
use archive::ArchiveError;
use datasets::{DatasetError, Datasets};
use fetch_policy::{redact_url, FetchPolicy, PolicyError};
use jails::{Cell, CellSpec, JailError, Jails, Process};

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
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
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
    #[error("base {base} is builder {builder}; delete the builder (or use --force)")]
    BaseIsBuilder { base: String, builder: String },
    #[error("base {0} is not ready (it is being imported or removed)")]
    BaseNotReady(String),
    #[error("pod {0} is running; kill it first or use --force")]
    PodRunning(String),
    #[error("pod {pod} is not running (it is {state})")]
    PodNotRunning { pod: String, state: PodState },
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
    #[error("the MDS did not start: {0}")]
    MdsDown(String),
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

/// Whose URLs a host imports bases from: whether they are checked against
/// `base.import.allow` (the SSRF policy, `fetch_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlSources {
    /// Local commands (`Host::open`), run by root on this host: the URLs
    /// are the operator's own, fetched as given, as a path is read as
    /// given. Root can reach anything from here anyway.
    Operator,
    /// The server (`Host::init`): URLs come from API users, who must not
    /// reach the server's own ports or its neighbours through it.
    Users,
}

/// What a host needs to point its pods at the MDS and keep the MDS's
/// index current; absent when jetpack.conf has no (valid) MDS keys.
struct MdsLink {
    keys: crate::mds::Keys,
    /// `http://HOST:PORT`, the pod network's host address.
    base: String,
    socket: PathBuf,
}

/// A pod as the runtime reports it: its row, and its dataset's mountpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Pod {
    #[serde(flatten)]
    pub row: PodRow,
    pub base_name: String,
    pub root: PathBuf,
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
    /// Opens the runtime over an initialised data dir, for a local command
    /// (its base imports fetch URLs unchecked: see `UrlSources`).
    pub fn open(config: Config, env: HostEnv) -> Result<Host, RuntimeError> {
        // Before anything is created: see `store::private`.
        private::private_umask();
        let db = config.data_dir.join("state.db");
        if !db.exists() {
            return Err(RuntimeError::NotInitialized(config.data_dir.clone()));
        }
        Self::open_with_store(config, env, &db, UrlSources::Operator)
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
        let mds = crate::mds::Keys::new(&config.mds_token_key, &config.mds_signing_key)
            .ok()
            .map(|keys| MdsLink {
                keys,
                base: format!("http://{}:{}", config.ip4_range.host(), config.mds_port),
                socket: mds_socket(&config),
            });
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

    /// Makes the pod network's host side exist; its address, which the
    /// MDS binds.
    pub fn prepare_pod_network(&self) -> Result<Ipv4Addr, RuntimeError> {
        self.jails
            .prepare_network(&self.config.jail_interface, self.config.ip4_range)?;
        Ok(self.config.ip4_range.host())
    }

    /// What the MDS is to know of every pod that has an address.
    pub fn mds_records(&self) -> Result<Vec<crate::mds::PodRecord>, RuntimeError> {
        Ok(self
            .pods()?
            .iter()
            .filter_map(|p| self.mds_record(p))
            .collect())
    }

    /// Whether this host points its pods at an MDS (it has the keys).
    pub fn has_mds(&self) -> bool {
        self.mds.is_some()
    }

    /// Annotations (name, value) the MDS gives `pod` from its next start,
    /// e.g. a build's parameters.
    pub fn annotate(&self, pod: &Pod, annotations: Vec<(String, String)>) {
        self.annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pod.row.id.to_string(), annotations);
    }

    /// Whether the MDS signed `content` for `pod` as `signature` (base64
    /// or hex). None when this host runs no MDS, so there is no key.
    pub fn pod_signature_is(&self, pod: &Pod, content: &[u8], signature: &str) -> Option<bool> {
        let link = self.mds.as_ref()?;
        let uuid = uuid::Uuid::parse_str(pod.row.id.as_str()).ok()?;
        Some(link.keys.signature_is(&uuid, content, signature))
    }

    /// A pod as the MDS describes it: an appc pod manifest with one app,
    /// the pod's command on its base, and the pod's annotations.
    fn mds_record(&self, pod: &Pod) -> Option<crate::mds::PodRecord> {
        let extra = self
            .annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pod.row.id.as_str())
            .cloned()
            .unwrap_or_default();
        mds_record(pod, extra)
    }

    /// Makes sure an MDS with this host's keys serves its pods, when
    /// jetpack.conf has the keys. One found running is adopted (told of
    /// every pod) only when it runs on its own (its rc.d script) with these
    /// very keys; any other is stopped. Else `jetpack mds` is started, tied
    /// to this process so that it ends with it however this process ends,
    /// and returned for the caller to stop. None when there is nothing to
    /// stop.
    pub fn start_mds(&self) -> Result<Option<crate::mds::lifeline::MdsChild>, RuntimeError> {
        use crate::mds::control::{self, send, Answer, ControlError, Request};
        let Some(link) = &self.mds else {
            tracing::info!("no MDS: jetpack.conf sets no mds.token-key and mds.signing-key");
            return Ok(None);
        };
        let down = |e: ControlError| RuntimeError::MdsDown(e.to_string());
        match send(&link.socket, &Request::Status) {
            Ok(Answer::Status(found)) => {
                let pid = found
                    .pid
                    .map(|p| format!("pid {p}"))
                    .unwrap_or_else(|| "pid unknown".into());
                match found.adoptable(link.keys.fingerprint()) {
                    Ok(()) => {
                        let pods = self.mds_records()?;
                        tracing::info!(
                            "adopting the MDS found running ({pid}, started on its own, with the keys of jetpack.conf); told it of {} pod(s)",
                            pods.len()
                        );
                        send(&link.socket, &Request::Replace { pods }).map_err(down)?;
                        return Ok(None);
                    }
                    Err(why) => {
                        tracing::warn!(
                            "replacing the MDS found running ({pid}): {why}; stopping it and starting this server's own"
                        );
                        control::stop(&link.socket, &found).map_err(down)?;
                    }
                }
            }
            Ok(other) => {
                return Err(down(ControlError::Protocol(format!(
                    "{other:?} to a status request on {}",
                    link.socket.display()
                ))))
            }
            // Nobody listens: the usual case.
            Err(ControlError::NotRunning { .. }) => {}
            Err(e) => return Err(down(e)),
        }
        let mut cmd = std::process::Command::new(&self.env.exe);
        cmd.args(&self.env.config_args)
            .arg("mds")
            .stdout(Stdio::null());
        let mut child = crate::mds::lifeline::spawn(cmd).map_err(io_err("starting jetpack mds"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Answer::Status(status)) = send(&link.socket, &Request::Status) {
                // The one that answers must be the one just started (not
                // one that another server started meanwhile).
                if status.pid == Some(child.id()) {
                    tracing::info!("started the MDS (pid {}) on {}", child.id(), link.base);
                    return Ok(Some(child));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RuntimeError::MdsDown(format!(
                    "jetpack mds exited ({status}); its error is above"
                )));
            }
            if std::time::Instant::now() > deadline {
                // Dropping `child` stops it.
                return Err(RuntimeError::MdsDown("no answer within 10 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Tells the MDS, if one runs, what changed. A host without an MDS
    /// runs pods all the same: they get no AC_METADATA_URL then.
    fn tell_mds(&self, request: crate::mds::control::Request) {
        let Some(link) = &self.mds else {
            return;
        };
        if let Err(e) = crate::mds::control::send(&link.socket, &request) {
            tracing::debug!("MDS not told: {e}");
        }
    }

    /// Creates the root dataset, its children and the state database;
    /// idempotent. jetpack's own state is made private (0700 directories,
    /// 0600 files), and what an earlier start left looser is tightened.
    /// This is the server's host: its base imports check URLs against
    /// `base.import.allow` (see `UrlSources`).
    pub fn init(config: Config, env: HostEnv) -> Result<Host, RuntimeError> {
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
        Self::open_with_store(config, env, &db, UrlSources::Users)
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

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- bases ----

    pub fn bases(&self) -> Result<Vec<BaseRow>, RuntimeError> {
        Ok(self.store().bases()?)
    }

    pub fn base(&self, reference: &str) -> Result<BaseRow, RuntimeError> {
        let mut found = self.store().find_bases(reference)?;
        match found.len() {
            0 => Err(RuntimeError::NoSuchBase(reference.to_string())),
            1 => Ok(found.remove(0)),
            count => Err(RuntimeError::Ambiguous {
                kind: "base",
                reference: reference.to_string(),
                count,
            }),
        }
    }

    /// Imports a root file system archive (file or URL) as a sealed base.
    pub fn import_base(
        &self,
        source: &str,
        name: Option<&str>,
        expected_sha256: Option<&str>,
        progress: &mut dyn FnMut(u64) -> std::ops::ControlFlow<()>,
    ) -> Result<Imported, RuntimeError> {
        let name = match name {
            Some(n) => Name::new("base name", n)?,
            None => Name::new(
                "base name (derived from the file name; give --name)",
                &archive::name_from_source(source),
            )?,
        };
        let staged = archive::stage(
            source,
            &self.config.data_dir.join("tmp"),
            match self.url_sources {
                UrlSources::Users => archive::Urls::Checked(&self.fetch_policy),
                UrlSources::Operator => archive::Urls::Trusted,
            },
            progress,
        )?;
        if let Some(expected) = expected_sha256 {
            if !staged.sha256.eq_ignore_ascii_case(expected) {
                return Err(ArchiveError::Digest {
                    source_name: redact_url(source),
                    expected: expected.to_string(),
                    actual: staged.sha256.clone(),
                }
                .into());
            }
        }
        self.import_staged(&staged, name, source)
    }

    /// Imports an archive already staged (and checked) as a sealed base.
    pub fn import_staged(
        &self,
        staged: &archive::Staged,
        name: Name,
        source: &str,
    ) -> Result<Imported, RuntimeError> {
        let id = BaseId::new(&staged.sha256)?;
        self.make_base(&id, name, source, staged.size, |path| {
            Ok(archive::unpack(staged, source, path)?)
        })
    }

    /// Imports the layers of an OCI image, unpacked in order, as a sealed
    /// base whose id is the image's manifest digest (hex).
    pub fn import_layers(
        &self,
        digest: &str,
        name: Name,
        source: &str,
        layers: &[archive::Staged],
    ) -> Result<Imported, RuntimeError> {
        let id = BaseId::new(digest)?;
        let size = layers.iter().map(|l| l.size).sum();
        self.make_base(&id, name, source, size, |path| {
            for (i, layer) in layers.iter().enumerate() {
                archive::unpack_layer(layer, &format!("{source} layer {}", i + 1), path)?;
            }
            Ok(())
        })
    }

    /// Makes base `id` unless it exists: its dataset, filled by `fill`, then
    /// sealed; any failure undoes all of it.
    fn make_base(
        &self,
        id: &BaseId,
        name: Name,
        source: &str,
        size: u64,
        fill: impl FnOnce(&Path) -> Result<(), RuntimeError>,
    ) -> Result<Imported, RuntimeError> {
        if let Some(existing) = self.store().base_by_id(id)? {
            return Ok(Imported {
                base: existing,
                existed: true,
            });
        }
        let row = BaseRow {
            id: id.clone(),
            name,
            // Shown by `GET /v1/bases`: no credentials.
            source: redact_url(source),
            size,
            state: BaseState::Importing,
            created_at: store::now(),
        };
        // Mark, make, commit: the row marks the work so that a crash leaves
        // something `base rm` can finish; each step below undoes on failure.
        self.store().insert_base(&row)?;
        let dataset = DatasetName::base(id);
        let result = self
            .datasets
            .create(&dataset)
            .map_err(RuntimeError::from)
            .and_then(|path| {
                // A pod's "/" as tar(1) would make it, not as jetpack's
                // umask (077) did; an archive's own "." entry still wins.
                let made = std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(io_err(format!("creating base {}", id.short())))
                .and_then(|_| fill(&path))
                .and_then(|_| Ok(self.datasets.seal(&dataset)?));
                if made.is_err() {
                    let _ = self.datasets.destroy(&dataset);
                }
                made
            })
            .and_then(|_| Ok(self.store().set_base_state(id, BaseState::Ready)?));
        if let Err(e) = result {
            let _ = self.store().delete_base(id);
            return Err(e);
        }
        Ok(Imported {
            base: BaseRow {
                state: BaseState::Ready,
                ..row
            },
            existed: false,
        })
    }

    /// Where a base's sealed file system can be read (its manifest, say).
    pub fn base_root(&self, base: &BaseRow) -> PathBuf {
        self.datasets.path(&DatasetName::base(&base.id))
    }

    /// Removes a base; refused while pods use it or it is a builder, unless
    /// `force`, which removes those pods first (killing the running ones)
    /// and forgets the builder.
    pub fn remove_base(&self, reference: &str, force: bool) -> Result<BaseRow, RuntimeError> {
        let base = self.base(reference)?;
        if let Some(builder) = self.store().builder_of_base(&base.id)? {
            if !force {
                return Err(RuntimeError::BaseIsBuilder {
                    base: base.name.to_string(),
                    builder,
                });
            }
            self.store().delete_builder(&builder)?;
        }
        if force {
            let pods = self.store().pods_of_base(&base.id)?;
            for pod in pods {
                let pod = self.pod(pod.id.as_str())?;
                self.remove_pod(&pod, true)?;
            }
        }
        let pods = self.store().pods_of_base(&base.id)?;
        if !pods.is_empty() {
            let names: Vec<String> = pods
                .iter()
                .map(|p| {
                    p.name
                        .as_ref()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| p.id.short().to_string())
                })
                .collect();
            return Err(RuntimeError::BaseInUse {
                base: base.name.to_string(),
                pods: names.join(", "),
            });
        }
        self.store().set_base_state(&base.id, BaseState::Removing)?;
        match self.datasets.destroy(&DatasetName::base(&base.id)) {
            Ok(()) | Err(DatasetError::NotFound(_)) => {}
            Err(e) => {
                let _ = self.store().set_base_state(&base.id, base.state);
                return Err(e.into());
            }
        }
        self.store().delete_base(&base.id)?;
        Ok(base)
    }

    // ---- pods ----

    fn pod_view(&self, row: PodRow, bases: &[BaseRow]) -> Pod {
        let base_name = bases
            .iter()
            .find(|b| b.id == row.base_id)
            .map(|b| b.name.to_string())
            .unwrap_or_else(|| row.base_id.short().to_string());
        let root = self.datasets.path(&DatasetName::pod(&row.id));
        Pod {
            row,
            base_name,
            root,
        }
    }

    /// A pod the store says is running whose cell is gone was lost (host
    /// reboot, holder killed): it is dead now. A running cell is found again.
    fn reconcile(&self, mut row: PodRow) -> Result<PodRow, RuntimeError> {
        if row.state.is_active() {
            let alive = row
                .cell
                .as_ref()
                .is_some_and(|c| self.jails.is_running(&Cell(c.clone())));
            if !alive {
                self.store().pod_finished(&row.id, PodState::Dead, None)?;
                if let Some(fresh) = self.store().pod(&row.id)? {
                    row = fresh;
                }
            }
        }
        Ok(row)
    }

    pub fn pods(&self) -> Result<Vec<Pod>, RuntimeError> {
        let rows = self.store().pods()?;
        let bases = self.store().bases()?;
        rows.into_iter()
            .map(|r| Ok(self.pod_view(self.reconcile(r)?, &bases)))
            .collect()
    }

    pub fn pod(&self, reference: &str) -> Result<Pod, RuntimeError> {
        let mut found = self.store().find_pods(reference)?;
        let row = match found.len() {
            0 => return Err(RuntimeError::NoSuchPod(reference.to_string())),
            1 => found.remove(0),
            count => {
                return Err(RuntimeError::Ambiguous {
                    kind: "pod",
                    reference: reference.to_string(),
                    count,
                })
            }
        };
        let bases = self.store().bases()?;
        Ok(self.pod_view(self.reconcile(row)?, &bases))
    }

    /// Clones a base into a new pod (not started).
    pub fn create_pod(
        &self,
        base: &str,
        name: Option<&str>,
        command: Vec<String>,
    ) -> Result<Pod, RuntimeError> {
        let base = self.base(base)?;
        if base.state != BaseState::Ready {
            return Err(RuntimeError::BaseNotReady(base.name.to_string()));
        }
        let name = name.map(|n| Name::new("pod name", n)).transpose()?;
        let command = if command.is_empty() {
            vec!["/bin/sh".to_string()]
        } else {
            command
        };
        let mut row = PodRow {
            id: PodId::random(),
            name,
            base_id: base.id.clone(),
            command,
            address: None,
            state: PodState::Creating,
            cell: None,
            exit_code: None,
            created_at: store::now(),
            started_at: None,
            finished_at: None,
        };
        let range = self.config.ip4_range;
        row.address = Some(self.store().insert_pod(
            &row,
            range.pod_addresses(),
            &range.to_string(),
        )?);
        let dataset = DatasetName::pod(&row.id);
        let made = self
            .datasets
            .clone_sealed(&DatasetName::base(&base.id), &dataset)
            .map_err(RuntimeError::from)
            .and_then(|_| Ok(self.store().set_pod_state(&row.id, PodState::Created)?));
        if let Err(e) = made {
            if self.datasets.exists(&dataset).unwrap_or(false) {
                let _ = self.datasets.destroy(&dataset);
            }
            let _ = self.store().delete_pod(&row.id);
            return Err(e);
        }
        row.state = PodState::Created;
        let bases = [base];
        Ok(self.pod_view(row, &bases))
    }

    fn cell_spec(&self, pod: &Pod) -> CellSpec {
        CellSpec {
            name: format!("{}{}", self.config.jail_name_prefix, pod.row.id),
            hostname: pod.label(),
            root: pod.root.clone(),
            address: pod.row.address.unwrap_or(Ipv4Addr::UNSPECIFIED),
            network: self.config.ip4_range,
            interface: self.config.jail_interface.clone(),
            securelevel: self.config.jail_securelevel,
            devfs_ruleset: self.config.jail_devfs_ruleset,
            // Only FreeBSD acts on it: a pod start on Linux reads nothing more.
            linux_abi: cfg!(target_os = "freebsd") && holds_linux_programs(&pod.root),
            params: self.config.jail_params.clone(),
        }
    }

    /// Checks that `program` exists in the pod before anything starts, so
    /// that a typo fails cleanly instead of leaving a started cell.
    fn check_program(&self, pod: &Pod, program: &str) -> Result<(), RuntimeError> {
        let found = if program.contains('/') {
            resolve_in_root(&pod.root, program).is_some()
        } else {
            jails::base_env("")
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, path)| {
                    path.split(':').any(|dir| {
                        resolve_in_root(&pod.root, &format!("{dir}/{program}")).is_some()
                    })
                })
                .unwrap_or(false)
        };
        if found {
            Ok(())
        } else {
            Err(RuntimeError::CommandNotFound {
                pod: pod.label(),
                program: program.to_string(),
            })
        }
    }

    /// Starts a pod's cell (its jail).
    pub fn start_pod(&self, pod: &Pod) -> Result<Cell, RuntimeError> {
        if !pod.row.state.can_start() {
            return Err(RuntimeError::PodCannotStart(pod.label(), pod.row.state));
        }
        let cell = self.jails.create(&self.cell_spec(pod))?;
        if let Err(e) = self.store().pod_started(&pod.row.id, &cell.0) {
            let _ = self.jails.destroy(&cell, Duration::ZERO);
            return Err(e.into());
        }
        if let Some(record) = self.mds_record(pod) {
            self.tell_mds(crate::mds::control::Request::Insert { pod: record });
        }
        Ok(cell)
    }

    fn running_cell(&self, pod: &Pod) -> Result<Cell, RuntimeError> {
        match (&pod.row.cell, pod.row.state.is_active()) {
            (Some(c), true) => Ok(Cell(c.clone())),
            _ => Err(RuntimeError::PodNotRunning {
                pod: pod.label(),
                state: pod.row.state,
            }),
        }
    }

    fn process(&self, pod: &Pod, argv: Vec<String>, terminal: bool) -> Process {
        let mut env = jails::base_env(&pod.label());
        if let (Some(link), Ok(uuid)) = (&self.mds, uuid::Uuid::parse_str(pod.row.id.as_str())) {
            env.push((
                "AC_METADATA_URL".into(),
                format!("{}/~{}", link.base, link.keys.token(&uuid)),
            ));
        }
        if terminal {
            env.push((
                "TERM".into(),
                std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
            ));
        }
        Process {
            argv,
            env,
            terminal,
        }
    }

    /// Runs `argv` in a running pod and waits for it; returns its exit code
    /// (128 + signal when killed).
    pub fn exec(&self, pod: &Pod, argv: Vec<String>, attach: Attach) -> Result<i32, RuntimeError> {
        let cell = self.running_cell(pod)?;
        let program = argv.first().cloned().unwrap_or_default();
        self.check_program(pod, &program)?;
        let terminal = matches!(attach, Attach::Terminal);
        let mut cmd = self
            .jails
            .command(&cell, &self.process(pod, argv, terminal))?;
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe. jetpack's umask (077) is
            // for its own files; a pod's processes get the usual 022. It
            // runs after the jail's own pre_exec, in the pod's process.
            unsafe {
                cmd.pre_exec(|| {
                    libc::umask(0o022);
                    Ok(())
                });
            }
        }
        let spawn_err = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RuntimeError::CommandNotFound {
                    pod: pod.label(),
                    program: program.clone(),
                }
            } else {
                RuntimeError::Spawn {
                    pod: pod.label(),
                    program: program.clone(),
                    source,
                }
            }
        };
        let status = match attach {
            Attach::Inherit => terminal::run_forwarding_signals(cmd, || {
                let _ = self.jails.destroy(&cell, self.stop_grace());
            })
            .map_err(spawn_err)?,
            Attach::Terminal => {
                terminal::run_on_pty(cmd, self.jails.open_pty(&cell)?).map_err(spawn_err)?
            }
            Attach::Log(path) => {
                // A pod's or a build's output: private, like all of
                // jetpack's files.
                let log = private::file_options()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_err(format!("opening {}", path.display())))?;
                let err = log.try_clone().map_err(io_err("duplicating the log"))?;
                cmd.stdin(Stdio::null()).stdout(log).stderr(err);
                cmd.status().map_err(spawn_err)?
            }
        };
        Ok(exit_code(status))
    }

    /// Starts a pod, runs its command (or `argv`) attached, then stops the
    /// cell and records the exit. The pod stays (exited) for another run.
    pub fn run_pod(
        &self,
        pod: &Pod,
        argv: Option<Vec<String>>,
        attach: Attach,
    ) -> Result<i32, RuntimeError> {
        let argv = argv
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| pod.row.command.clone());
        self.check_program(pod, &argv[0])?;
        self.start_pod(pod)?;
        let pod = self.pod(pod.row.id.as_str())?;
        self.supervise(&pod, argv, attach)
    }

    /// The second half of `run_pod`: the pod's cell is running; run `argv`
    /// in it until it ends, then stop the cell and record the exit.
    pub fn supervise(
        &self,
        pod: &Pod,
        argv: Vec<String>,
        attach: Attach,
    ) -> Result<i32, RuntimeError> {
        let ran = self.exec(pod, argv, attach);
        let cell = self.running_cell(pod)?;
        let stopped = self.jails.destroy(&cell, self.stop_grace());
        match &ran {
            Ok(code) => self
                .store()
                .pod_finished(&pod.row.id, PodState::Exited, Some(*code))?,
            Err(_) => self
                .store()
                .pod_finished(&pod.row.id, PodState::Exited, None)?,
        }
        stopped?;
        ran
    }

    /// Starts a pod, runs `argv` in it with its output appended to `log`,
    /// and stops it: a run for work with an end (a build, a validation).
    /// The pod is killed once `limit` has passed or `cancelled()` says so.
    pub fn run_bounded(
        &self,
        pod: &Pod,
        argv: Vec<String>,
        log: &Path,
        limit: Duration,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Ended, RuntimeError> {
        self.check_program(pod, argv.first().map_or("", String::as_str))?;
        let cell = self.start_pod(pod)?;
        let pod = self.pod(pod.row.id.as_str())?;
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let cell_ref = &cell;
        let (ran, stopped_by) = std::thread::scope(|scope| {
            let watchdog = scope.spawn(move || {
                let tick = Duration::from_millis(50);
                loop {
                    let left = limit.saturating_sub(started.elapsed());
                    match finished.recv_timeout(left.min(tick)) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return None,
                    }
                    let why = if cancelled() {
                        Ended::Cancelled
                    } else if started.elapsed() >= limit {
                        Ended::TimedOut
                    } else {
                        continue;
                    };
                    // Ending the cell ends every process in it, so the
                    // exec below returns.
                    let _ = self.jails.destroy(cell_ref, Duration::ZERO);
                    return Some(why);
                }
            });
            let ran = self.exec(&pod, argv, Attach::Log(log.to_path_buf()));
            let _ = done.send(());
            (ran, watchdog.join().ok().flatten())
        });
        let stopped = self.jails.destroy(&cell, Duration::ZERO);
        let code = ran.as_ref().ok().copied();
        self.store()
            .pod_finished(&pod.row.id, PodState::Exited, code)?;
        stopped?;
        let code = ran?;
        Ok(stopped_by.unwrap_or(Ended::Exited(code)))
    }

    /// Starts a pod with its command running under a detached supervisor
    /// (`jetpack pod __supervise`), logging to `<data.dir>/logs/<id>.log`.
    pub fn run_pod_detached(
        &self,
        pod: &Pod,
        argv: Option<Vec<String>>,
    ) -> Result<PathBuf, RuntimeError> {
        let argv = argv
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| pod.row.command.clone());
        self.check_program(pod, &argv[0])?;
        let log = self.pod_log_path(pod);
        if let Some(logs) = log.parent() {
            private::create_dir(logs).map_err(io_err(format!("creating {}", logs.display())))?;
        }
        let cell = self.start_pod(pod)?;
        let mut cmd = std::process::Command::new(&self.env.exe);
        cmd.args(&self.env.config_args)
            .args(["pod", "__supervise", pod.row.id.as_str(), "--"])
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; a new session detaches the
        // supervisor from this terminal.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        match cmd.spawn() {
            // A long-lived caller (the server) must reap its supervisors;
            // a short one (the CLI) exits and leaves them to init.
            Ok(mut supervisor) => {
                std::thread::spawn(move || supervisor.wait());
            }
            Err(e) => {
                let _ = self.jails.destroy(&cell, Duration::ZERO);
                let _ = self
                    .store()
                    .pod_finished(&pod.row.id, PodState::Exited, None);
                return Err(io_err(format!(
                    "starting the supervisor {}",
                    self.env.exe.display()
                ))(e));
            }
        }
        Ok(log)
    }

    /// Where a detached pod's output goes.
    pub fn pod_log_path(&self, pod: &Pod) -> PathBuf {
        self.config
            .data_dir
            .join("logs")
            .join(format!("{}.log", pod.row.id))
    }

    fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.config.jail_stop_timeout)
    }

    /// Stops a running pod: SIGTERM to its processes, SIGKILL after
    /// `jail.stop.timeout`, then its cell goes.
    pub fn kill_pod(&self, pod: &Pod) -> Result<(), RuntimeError> {
        let cell = self.running_cell(pod)?;
        self.store()
            .set_pod_state(&pod.row.id, PodState::Stopping)?;
        self.jails.destroy(&cell, self.stop_grace())?;
        self.store()
            .pod_finished(&pod.row.id, PodState::Exited, None)?;
        Ok(())
    }

    /// Removes a pod and its clone; a running pod only with `force`.
    pub fn remove_pod(&self, pod: &Pod, force: bool) -> Result<(), RuntimeError> {
        if pod.row.state.is_active() {
            if !force {
                return Err(RuntimeError::PodRunning(pod.label()));
            }
            self.kill_pod(pod)?;
        }
        self.store()
            .set_pod_state(&pod.row.id, PodState::Removing)?;
        match self.datasets.destroy(&DatasetName::pod(&pod.row.id)) {
            Ok(()) | Err(DatasetError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store().delete_pod(&pod.row.id)?;
        if let Some(address) = pod.row.address {
            self.tell_mds(crate::mds::control::Request::Remove { address });
        }
        self.annotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(pod.row.id.as_str());
        Ok(())
    }

    /// Cells with this host's name prefix that no pod in the store owns
    /// (left by a crash between start and record).
    pub fn orphan_cells(&self) -> Result<Vec<String>, RuntimeError> {
        let known: Vec<String> = self
            .store()
            .pods()?
            .into_iter()
            .filter_map(|p| p.cell)
            .collect();
        Ok(self
            .jails
            .list(&self.config.jail_name_prefix)?
            .into_iter()
            .filter(|(_, cell)| !known.contains(&cell.0))
            .map(|(name, _)| name)
            .collect())
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
    ("bases", Depth::Files),
    ("pods", Depth::Files),
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

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Follows `path` inside `root` the way the pod will see it: absolute
/// symlinks are taken relative to the pod's root, never the host's.
fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut current = PathBuf::from("/");
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let candidate = current.join(&part);
        let host = root.join(candidate.strip_prefix("/").ok()?);
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let target = target.to_str()?;
            if target.starts_with('/') {
                current = PathBuf::from("/");
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        } else {
            current = candidate;
        }
    }
    let host = root.join(current.strip_prefix("/").ok()?);
    host.is_file().then_some(host)
}

/// Whether the programs of `root` are Linux ones, judged by its /bin/sh
/// (followed inside the root): an ELF not branded FreeBSD in its OS/ABI
/// byte. A root without one counts as native.
fn holds_linux_programs(root: &Path) -> bool {
    use std::io::Read;
    let Some(sh) = resolve_in_root(root, "/bin/sh") else {
        return false;
    };
    let mut head = [0u8; 8];
    std::fs::File::open(sh)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && elf_is_linux(&head)
}

/// From an ELF's first bytes: FreeBSD brands its programs with OS/ABI 9;
/// Linux toolchains leave 0 (System V) or write 3 (GNU/Linux).
fn elf_is_linux(head: &[u8]) -> bool {
    const ELFOSABI_SYSV: u8 = 0;
    const ELFOSABI_LINUX: u8 = 3;
    head.starts_with(b"\x7fELF") && matches!(head.get(7), Some(&(ELFOSABI_SYSV | ELFOSABI_LINUX)))
}

/// Where the MDS's control socket is.
pub fn mds_socket(config: &Config) -> PathBuf {
    config.data_dir.join("mds.sock")
}

/// A pod as the MDS describes it, with `extra` annotations.
fn mds_record(pod: &Pod, extra: Vec<(String, String)>) -> Option<crate::mds::PodRecord> {
    let address = pod.row.address?;
    let uuid = uuid::Uuid::parse_str(pod.row.id.as_str()).ok()?;
    let image = serde_json::json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": pod.base_name,
        "labels": [{"name": "os", "value": std::env::consts::OS}],
    });
    let mut annotations: Vec<serde_json::Value> = Vec::new();
    if let Some(n) = &pod.row.name {
        annotations.push(serde_json::json!({"name": "jetpack/name", "value": n.to_string()}));
    }
    for (name, value) in extra {
        annotations.push(serde_json::json!({"name": name, "value": value}));
    }
    let annotations = serde_json::Value::Array(annotations);
    let app = crate::mds::AppRecord {
        name: "main".into(),
        image_id: pod.row.base_id.to_string(),
        image_manifest: image.clone(),
        annotations: serde_json::json!([]),
    };
    let manifest = serde_json::json!({
        "acKind": "PodManifest",
        "acVersion": "0.8.11",
        "apps": [{
            "name": app.name,
            "image": {"name": pod.base_name, "id": app.image_id},
            "app": {"exec": pod.row.command},
        }],
        "annotations": annotations,
    });
    Some(crate::mds::PodRecord {
        uuid,
        address,
        manifest,
        annotations,
        apps: vec![app],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_inside_the_pod_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", root.join("bin/echo")).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("bin/escape")).unwrap();
        assert!(resolve_in_root(root, "/bin/echo").is_some());
        assert!(resolve_in_root(root, "/bin/sh").is_some());
        assert!(resolve_in_root(root, "/bin/../bin/busybox").is_some());
        // The host's /etc/passwd exists; the pod's does not.
        assert!(resolve_in_root(root, "/bin/escape").is_none());
        assert!(resolve_in_root(root, "/bin/nope").is_none());
        assert!(resolve_in_root(root, "/bin").is_none());
    }

    #[test]
    fn a_root_of_linux_programs_is_told_from_a_freebsd_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(!holds_linux_programs(root), "no /bin/sh: native");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        // This host's own shell is a Linux program, followed by a link.
        std::fs::copy("/bin/sh", root.join("bin/dash")).unwrap();
        std::os::unix::fs::symlink("dash", root.join("bin/sh")).unwrap();
        assert!(holds_linux_programs(root));

        let mut freebsd = *b"\x7fELF\x02\x01\x01\x09\0\0\0\0";
        assert!(!elf_is_linux(&freebsd), "branded FreeBSD");
        freebsd[7] = 3;
        assert!(elf_is_linux(&freebsd), "branded GNU/Linux");
        assert!(!elf_is_linux(b"#!/bin/sh\n"), "a script is no verdict");
        assert!(!elf_is_linux(b"\x7fELF"), "too short");
        std::fs::write(root.join("bin/dash"), b"#!/bin/sh\n").unwrap();
        assert!(!holds_linux_programs(root));
    }
}
