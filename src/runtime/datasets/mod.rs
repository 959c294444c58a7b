//! Datasets: the file systems bases and pods live on, behind one small trait
//! with a driver per mechanism (containerd's snapshotter model).
//!
//! Vocabulary, by example. `create("bases/<id>")` gives a writable dataset
//! mounted at `<root mountpoint>/bases/<id>`; an import unpacks a root file
//! system into it and `seal`s it, which snapshots it as `@sealed` and makes
//! it read-only: now it is a base. `clone_sealed("bases/<id>",
//! "pods/<uuid>")` makes a pod's root from that snapshot in O(1) on ZFS (a
//! copy on the dir driver). `destroy` removes a dataset with its snapshots;
//! it fails with `InUse` while clones of it exist. `send`/`receive` move a
//! sealed dataset as a byte stream (a ZFS stream, or a tar on the dir driver).
//!
//! Names are opaque ids (`DatasetName`): human names live in the store.

mod dir;
#[cfg(target_os = "linux")]
mod overlay;
mod zfs_cli;
#[cfg(all(target_os = "freebsd", feature = "zfs"))]
mod zfs_core;

use std::io::{Read, Write};
use std::path::PathBuf;

pub use dir::DirDatasets;
pub use zfs_cli::ZfsCliDatasets;
#[cfg(all(target_os = "freebsd", feature = "zfs"))]
pub use zfs_core::ZfsDatasets;

use crate::config::{Config, DatasetsDriver};
use crate::names::{DatasetName, Name};
use crate::runtime::tool::ToolError;

/// The snapshot that makes a dataset a base.
pub const SEALED: &str = "sealed";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset {0} does not exist")]
    NotFound(String),
    #[error("dataset {0} already exists")]
    Exists(String),
    #[error("dataset {0} is in use (it has clones or mounts); remove those first")]
    InUse(String),
    #[error("dataset {0} is not sealed")]
    NotSealed(String),
    #[error("dataset {0} has no snapshot {1:?}")]
    NoSnapshot(String, String),
    #[error("dataset {0} cannot go back to snapshot {1:?}: later snapshots of it have clones (pods cloned since); remove those first")]
    LaterClones(String, String),
    #[error("dataset {0} already has a snapshot {1:?}")]
    SnapshotExists(String, String),
    #[error("no space left for dataset {0}")]
    NoSpace(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("unexpected output from {tool}: {line:?}")]
    Parse { tool: &'static str, line: String },
    #[error("datasets driver {0} is not available on this host: {1}")]
    Unavailable(&'static str, String),
    /// A step failed and the driver's own undo could not remove everything
    /// it made (`runtime::undo`).
    #[error("{cause} (and left behind: {left})")]
    LeftBehind {
        cause: Box<DatasetError>,
        left: crate::runtime::LeftBehind,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DatasetError {
    let what = what.into();
    move |source| {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            DatasetError::NoSpace(what)
        } else {
            DatasetError::Io { what, source }
        }
    }
}

/// What `list` reports of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub used: u64,
    pub referenced: u64,
    pub mountpoint: PathBuf,
    pub sealed: bool,
}

pub trait Datasets: Send + Sync {
    /// The driver's name as jetpack.conf spells it.
    fn driver(&self) -> &'static str;

    /// Creates the root and its `bases` and `pods` children; idempotent.
    fn init(&self) -> Result<(), DatasetError>;

    /// Where `name` is (or would be) mounted.
    fn path(&self, name: &DatasetName) -> PathBuf;

    fn exists(&self, name: &DatasetName) -> Result<bool, DatasetError>;

    /// A new, empty, writable dataset; returns its mountpoint.
    fn create(&self, name: &DatasetName) -> Result<PathBuf, DatasetError>;

    /// Snapshots `name@sealed` and makes `name` read-only.
    fn seal(&self, name: &DatasetName) -> Result<(), DatasetError>;

    /// Whether a sealed dataset's files cannot change at all, not even by
    /// root (ZFS's readonly=on), rather than only by agreement (dir).
    fn seals_read_only(&self) -> bool {
        false
    }

    /// A writable clone of `origin@sealed`; returns its mountpoint.
    fn clone_sealed(
        &self,
        origin: &DatasetName,
        name: &DatasetName,
    ) -> Result<PathBuf, DatasetError>;

    /// Removes `name` and its snapshots. Retries briefly while the dataset
    /// is busy (zfs-fuse right after a clone); `InUse` while it has clones.
    fn destroy(&self, name: &DatasetName) -> Result<(), DatasetError>;

    /// Every dataset below the root (not the root itself).
    fn list(&self) -> Result<Vec<DatasetInfo>, DatasetError>;

    /// Bytes used by `name` and its snapshots.
    fn usage(&self, name: &DatasetName) -> Result<u64, DatasetError>;

    /// Whether `set_quota` can bound a dataset's space (a pod's `--disk`).
    fn has_quotas(&self) -> bool {
        false
    }

    /// Bounds the space `name` may use (ZFS `quota=`); writes past it fail
    /// with EDQUOT or ENOSPC. Only where `has_quotas`.
    fn set_quota(&self, name: &DatasetName, bytes: u64) -> Result<(), DatasetError> {
        let _ = (name, bytes);
        Err(DatasetError::Unavailable(
            self.driver(),
            "it cannot limit a dataset's space".into(),
        ))
    }

    /// Writes `name@sealed` as a stream.
    fn send(&self, name: &DatasetName, out: &mut dyn Write) -> Result<(), DatasetError>;

    /// Creates `name` from a stream made by `send` of the same driver and
    /// seals it; on failure nothing is left.
    fn receive(&self, name: &DatasetName, input: &mut dyn Read) -> Result<PathBuf, DatasetError>;

    /// Which streams `send` writes and `receive` reads: "zfs" for both ZFS
    /// drivers (plain `zfs send` streams), "dir" for tar.
    fn stream_kind(&self) -> &'static str {
        "dir"
    }

    // A pod's own snapshots (`runtime::snapshots`): `snapshot(pod, s)`
    // keeps the pod's tree as it is now under the name `s` (a ZFS
    // snapshot, a copy on the dir driver); `rollback` puts it back;
    // `clone_snapshot` makes a new writable dataset from it. `destroy`
    // removes a dataset's snapshots with it. Snapshot names are `Name`s,
    // never `SEALED`. Drivers without them say so.

    /// Keeps `name`'s tree as it is now as snapshot `snap`.
    fn snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let _ = (name, snap);
        Err(no_snapshots(self.driver()))
    }

    /// Puts `name` back as it was at `snap`; later snapshots are kept
    /// where the driver can (dir), dropped where it cannot (ZFS `-r`).
    fn rollback(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let _ = (name, snap);
        Err(no_snapshots(self.driver()))
    }

    /// `name`'s own snapshots (not `SEALED`), oldest first.
    fn snapshots(&self, name: &DatasetName) -> Result<Vec<SnapshotInfo>, DatasetError> {
        let _ = name;
        Err(no_snapshots(self.driver()))
    }

    /// Removes one snapshot of `name`.
    fn destroy_snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let _ = (name, snap);
        Err(no_snapshots(self.driver()))
    }

    /// A new writable dataset `target` holding `origin@snap`; returns its
    /// mountpoint. On ZFS a clone (so `origin` cannot be destroyed while
    /// `target` exists: `InUse`), on dir an independent copy.
    fn clone_snapshot(
        &self,
        origin: &DatasetName,
        snap: &Name,
        target: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        let _ = (origin, snap, target);
        Err(no_snapshots(self.driver()))
    }
}

fn no_snapshots(driver: &'static str) -> DatasetError {
    DatasetError::Unavailable(driver, "it has no pod snapshots".into())
}

/// One snapshot of a dataset, as `snapshots` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    pub name: String,
    /// Unix seconds.
    pub created: i64,
}

/// Picks the driver jetpack.conf asks for; `auto` takes ZFS when the pool of
/// `root.zfs` exists and the zfs command answers, else plain directories.
pub fn open(config: &Config) -> Result<Box<dyn Datasets>, DatasetError> {
    let zfs_cli = || ZfsCliDatasets::new(&config.root_zfs, &config.root_mountpoint);
    match config.datasets_driver {
        DatasetsDriver::Dir => Ok(Box::new(DirDatasets::new(&config.root_mountpoint))),
        DatasetsDriver::ZfsCli => Ok(Box::new(zfs_cli())),
        DatasetsDriver::Zfs => zfs_core(config),
        DatasetsDriver::Auto => {
            if zfs_cli().pool_available() {
                zfs_core(config).or_else(|_| Ok(Box::new(zfs_cli())))
            } else {
                Ok(Box::new(DirDatasets::new(&config.root_mountpoint)))
            }
        }
    }
}

#[cfg(all(target_os = "freebsd", feature = "zfs"))]
fn zfs_core(config: &Config) -> Result<Box<dyn Datasets>, DatasetError> {
    Ok(Box::new(ZfsDatasets::new(
        &config.root_zfs,
        &config.root_mountpoint,
    )?))
}

#[cfg(not(all(target_os = "freebsd", feature = "zfs")))]
fn zfs_core(_config: &Config) -> Result<Box<dyn Datasets>, DatasetError> {
    Err(DatasetError::Unavailable(
        "zfs",
        "libzfs_core support is built only on FreeBSD with the `zfs` feature; use zfs-cli".into(),
    ))
}
