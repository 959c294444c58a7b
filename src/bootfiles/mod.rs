//! Boot files for machines (issue 19): the ISO and microkernel stores and
//! OS images, their rules, no HTTP. A stored file is a blob of the blob
//! store with a row naming it (`store::bootfiles`); an OS image is an
//! ISO's contents extracted into a new dataset, sealed, made by a job
//! (osimages.rs: fetch.rs downloads, extract.rs unpacks with bsdtar;
//! copies.rs copies one from the host that made it to another host).
//!
//! The southbound file server reads what this serves through plain
//! methods: `osimage_root`, `ready_osimages`, `stored_file`, `stored_files`.

mod copies;
mod extract;
mod fetch;
mod osimages;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::catalog::remote_blobs::RemoteBlob;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::jobs::{JobError, Jobs};
use crate::names::{DatasetName, NameError, Tag};
use crate::runtime::datasets::DatasetError;
use crate::runtime::fetch_policy::{FetchPolicy, PolicyError};
use crate::runtime::Host;
use crate::store::blobs::{BlobError, StagedBlob};
pub use crate::store::bootfiles::{BootFileRow, OsImageRow, OsImageState, StoreKind};
use crate::store::{self, StoreError};

pub use fetch::{check_sha256, check_url};
pub use osimages::{check_path, Source, INTERRUPTED};

#[derive(Debug, thiserror::Error)]
pub enum BootFilesError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no {what} {name:?}")]
    NotFound { what: &'static str, name: String },
    #[error("{what} {name} exists already")]
    Taken { what: &'static str, name: String },
    #[error("the ISO {iso} is used by the OS image(s) {images}; delete them first")]
    InUse { iso: String, images: String },
    #[error("the OS image {0} is still being made (its job runs); wait for it or cancel the job")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{key}: {why}")]
    Config { key: &'static str, why: String },
    #[error("cannot fetch {url}: {why}")]
    Fetch { url: String, why: String },
    #[error("the download of {url} stalled: nothing came for {seconds} s")]
    Stalled { url: String, seconds: u64 },
    #[error("{source_name}: sha256 is {actual}, expected {expected}")]
    Digest {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("{0} is not an ISO 9660 or UDF image")]
    NotAnIso(String),
    #[error("extracting the ISO failed: {0}")]
    Extract(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A stored file's blob could not be fetched from the host that has it.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BootFilesError {
    let what = what.into();
    move |source| BootFilesError::Io { what, source }
}

/// The keys of `bootfiles.*`, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `bootfiles.maxupload`: the largest ISO or microkernel accepted, bytes.
    pub max_upload: u64,
    /// `bootfiles.fetch.stall`: how long a download may receive nothing.
    pub stall: Duration,
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, BootFilesError> {
        let number = |key: &'static str| -> Result<u64, BootFilesError> {
            let text = config.get(key).unwrap_or("");
            text.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| BootFilesError::Config {
                    key,
                    why: format!("{text:?} is not a positive whole number"),
                })
        };
        Ok(Settings {
            max_upload: number("bootfiles.maxupload")?,
            stall: Duration::from_secs(number("bootfiles.fetch.stall")?),
        })
    }
}

/// A stored ISO or microkernel as the file server reads it.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub name: String,
    /// The blob holding its bytes (immutable: replaced, never rewritten).
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub modified: SystemTime,
}

/// The parent dataset of every OS image's dataset.
const OSIMAGES: &str = "osimages";

/// The service: the stores and OS images of one server.
pub struct BootFiles {
    host: Arc<Host>,
    catalog: Arc<Catalog>,
    jobs: Arc<Jobs>,
    settings: Settings,
    policy: Arc<FetchPolicy>,
    /// Where downloads are staged until they are extracted.
    staging: PathBuf,
    /// The server is stopping: work in flight ends now (`stop`).
    stopping: AtomicBool,
    /// The OS image datasets known to be on this host (`copies`).
    osimages_here: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held while an OS image is copied from another host.
    copying: std::sync::Mutex<()>,
}

/// What a store is called in messages.
/// Where the API serves a store's files (`/v1/isos/NAME`...).
fn api_collection(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Iso => "isos",
        StoreKind::Microkernel => "microkernels",
    }
}

fn stored_file(row: BootFileRow, path: PathBuf) -> StoredFile {
    StoredFile {
        name: row.name.to_string(),
        path,
        size: row.size,
        sha256: row.sha256,
        modified: std::time::UNIX_EPOCH + Duration::from_secs(row.created_at.max(0) as u64),
    }
}

fn store_word(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Iso => "ISO",
        StoreKind::Microkernel => "microkernel",
    }
}

/// A name of a stored file, an OS image or a version: a tag's pattern
/// (letters, digits, `-`, `_`, `.`; no `/`, `..`, NUL or control
/// characters; at most 128), since each becomes a path of the file server.
pub fn check_name(kind: &'static str, s: &str) -> Result<Tag, BootFilesError> {
    Ok(Tag::new(kind, s)?)
}

impl BootFiles {
    /// Opens the service at server start: makes the OS images' parent
    /// dataset, empties the staging folder and settles OS images a
    /// previous server left half made (`osimages::settle`).
    pub fn open(
        host: Arc<Host>,
        catalog: Arc<Catalog>,
        jobs: Arc<Jobs>,
    ) -> Result<BootFiles, BootFilesError> {
        let config = host.config();
        let settings = Settings::from_config(config)?;
        let policy = Arc::new(FetchPolicy::parse(&config.base_import_allow)?);
        let staging = config.data_dir.join("tmp").join("bootfiles");
        let _ = std::fs::remove_dir_all(&staging);
        store::private::create_dir(&staging)
            .map_err(io_err(format!("creating {}", staging.display())))?;
        let parent = DatasetName::new(OSIMAGES).map_err(BootFilesError::from)?;
        // Private like the rest of jetpack's files: the trees below keep
        // the ISO's own modes, and only the file server (root) reads them.
        if !host.datasets().exists(&parent)? {
            host.datasets().create(&parent)?;
        }
        let service = BootFiles {
            host,
            catalog,
            jobs,
            settings,
            policy,
            staging,
            stopping: AtomicBool::new(false),
            osimages_here: std::sync::Mutex::new(std::collections::HashSet::new()),
            copying: std::sync::Mutex::new(()),
        };
        service.settle()?;
        service.sweep_copies()?;
        Ok(service)
    }

    /// Ends the work in flight (the server is stopping): downloads and
    /// extractions stop at once instead of holding the server's exit (its
    /// runtime waits for blocking work), and their OS images become
    /// `failed`, interrupted, with nothing half-made.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn with_store<T>(&self, f: impl FnOnce(&store::Store) -> T) -> T {
        self.catalog.with_store(f)
    }

    // ---- the stores ----

    /// Stores an uploaded file under `name` (409 when taken; the staged
    /// blob is dropped then, so nothing is left).
    pub fn put(
        &self,
        kind: StoreKind,
        name: &str,
        staged: StagedBlob,
        source: &str,
    ) -> Result<BootFileRow, BootFilesError> {
        let name = check_name(name_kind(kind), name)?;
        if self.with_store(|s| s.bootfile(kind, &name))?.is_some() {
            return Err(BootFilesError::Taken {
                what: store_word(kind),
                name: name.to_string(),
            });
        }
        let info = staged.commit()?;
        let row = BootFileRow {
            kind,
            name,
            sha256: info.sha256,
            size: info.size,
            source: source.to_string(),
            created_at: store::now(),
            host: Some(self.catalog.host().to_string()),
        };
        match self.with_store(|s| s.insert_bootfile(&row)) {
            Ok(()) => Ok(row),
            Err(StoreError::NameTaken(_)) => {
                // A concurrent upload of the same name won; the blob stays
                // only if something else names it (the sweep takes it else).
                Err(BootFilesError::Taken {
                    what: store_word(kind),
                    name: row.name.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `name` is free in the store (checked before an upload's
    /// body is read, so that a taken name costs no transfer).
    pub fn check_free(&self, kind: StoreKind, name: &str) -> Result<(), BootFilesError> {
        let name = check_name(name_kind(kind), name)?;
        match self.with_store(|s| s.bootfile(kind, &name))? {
            Some(_) => Err(BootFilesError::Taken {
                what: store_word(kind),
                name: name.to_string(),
            }),
            None => Ok(()),
        }
    }

    pub fn list(&self, kind: StoreKind) -> Result<Vec<BootFileRow>, BootFilesError> {
        Ok(self.with_store(|s| s.bootfiles(kind))?)
    }

    pub fn get(&self, kind: StoreKind, name: &str) -> Result<BootFileRow, BootFilesError> {
        let tag = check_name(name_kind(kind), name)?;
        self.with_store(|s| s.bootfile(kind, &tag))?
            .ok_or_else(|| BootFilesError::NotFound {
                what: store_word(kind),
                name: name.to_string(),
            })
    }

    /// Deletes a stored file; refused while an OS image is made from it.
    pub fn delete(&self, kind: StoreKind, name: &str) -> Result<BootFileRow, BootFilesError> {
        let row = self.get(kind, name)?;
        match self.with_store(|s| s.delete_bootfile(kind, &row.name, &row.sha256))? {
            Err(images) => Err(BootFilesError::InUse {
                iso: row.name.to_string(),
                images: images.join(", "),
            }),
            Ok(shared) => {
                if !shared {
                    match self.catalog.blobs().remove(&row.sha256) {
                        Ok(()) | Err(BlobError::NotFound(_)) => {}
                        // The row is gone; the start-up sweep takes the blob.
                        Err(e) => tracing::warn!("removing the blob of {}: {e}", row.name),
                    }
                }
                Ok(row)
            }
        }
    }

    // ---- what the southbound file server reads ----

    /// A stored file by name, as the file server reads it.
    pub fn stored_file(&self, kind: StoreKind, name: &str) -> Result<StoredFile, BootFilesError> {
        let row = self.get(kind, name)?;
        let path = self.blob_here(&row)?;
        Ok(stored_file(row, path))
    }

    /// Every file of a store, as the file server lists it (a listing
    /// fetches nothing: a file another host has comes when it is asked for).
    pub fn stored_files(&self, kind: StoreKind) -> Result<Vec<StoredFile>, BootFilesError> {
        self.list(kind)?
            .into_iter()
            .map(|row| {
                let path = self.catalog.blobs().path(&row.sha256)?;
                Ok(stored_file(row, path))
            })
            .collect()
    }

    /// The path of a stored file's blob here, fetched first from the host
    /// that has it when this one does not (a fleet over several hosts).
    pub fn blob_here(&self, row: &BootFileRow) -> Result<PathBuf, BootFilesError> {
        Ok(self.catalog.remote_blob(RemoteBlob {
            what: format!("{} {}", store_word(row.kind), row.name),
            host: row.host.as_deref(),
            api_path: format!("/v1/{}/{}", api_collection(row.kind), row.name),
            sha256: &row.sha256,
            size: row.size,
        })?)
    }

    /// The root directory of a ready OS image (its sealed dataset),
    /// copied first from the host that made it when this one lacks it.
    /// Blocking.
    pub fn osimage_root(&self, name: &str, version: &str) -> Result<PathBuf, BootFilesError> {
        let row = self.osimage(name, version)?;
        if row.state != OsImageState::Ready {
            return Err(BootFilesError::NotFound {
                what: "ready OS image",
                name: format!("{name} {version}"),
            });
        }
        self.copy_here(&row)?;
        Ok(self.host.datasets().path(&row.dataset))
    }

    /// Whether a ready OS image's files cannot change under the server
    /// (its dataset is read-only to root too).
    pub fn osimages_read_only(&self) -> bool {
        self.host.datasets().seals_read_only()
    }

    /// Every ready OS image, as (name, version).
    pub fn ready_osimages(&self) -> Result<Vec<(String, String)>, BootFilesError> {
        Ok(self
            .osimages()?
            .into_iter()
            .filter(|r| r.state == OsImageState::Ready)
            .map(|r| (r.name.to_string(), r.version.to_string()))
            .collect())
    }

    /// Erases every stored file and OS image (`serve --clean`); their
    /// blobs go with the catalog's sweep.
    pub fn clear(&self) -> Result<(), BootFilesError> {
        for row in self.osimages()? {
            self.remove_osimage(&row)?;
        }
        for kind in [StoreKind::Iso, StoreKind::Microkernel] {
            for row in self.list(kind)? {
                self.with_store(|s| s.delete_bootfile(kind, &row.name, &row.sha256))??;
            }
        }
        Ok(())
    }
}

impl From<Vec<String>> for BootFilesError {
    fn from(images: Vec<String>) -> Self {
        BootFilesError::InUse {
            iso: String::new(),
            images: images.join(", "),
        }
    }
}

fn name_kind(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Iso => "ISO name",
        StoreKind::Microkernel => "microkernel name",
    }
}
