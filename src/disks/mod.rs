//! Disks for hypervisors (Mothership's "Generate & download image"): an
//! image made into a GRUB-bootable disk (an ISO, or raw, qcow2, vmdk, vdi),
//! cached by image id and format under `<data.dir>/disks`, so that a second
//! request is a file already there. This module owns the formats, the
//! cache (its layout, the per-disk locks, publishing and forgetting) and
//! the download's file name; make.rs makes one disk (its tools run by
//! `runtime::tool::run_limited`).
//! Nothing here knows HTTP.
//!
//! Cache layout (0700 folders, 0600 files, like the rest of data.dir):
//!
//! ```text
//! disks/<image id>/<format>/disk      the disk
//! disks/<image id>/<format>/sha256    its sha256 (the download's ETag)
//! disks/.staging/<random>/            one disk being made
//! ```
//!
//! A disk is made in a staging folder and published by renaming its
//! folder into place, so a reader sees a whole disk or none.

mod make;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::catalog::{Catalog, CatalogError};
use crate::config::DisksConfig;
use crate::names::ImageId;
use crate::store::blobs::BlobError;
use crate::store::catalog::ImageRow;
use crate::store::private;

/// What a disk can be made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskFormat {
    /// The hybrid ISO's bytes: boots as a hard disk through its MBR.
    Raw,
    Qcow2,
    Vmdk,
    Vdi,
    /// A bootable ISO 9660 image (El Torito), also bootable as a disk.
    Iso,
}

impl DiskFormat {
    pub const ALL: [DiskFormat; 5] = [
        DiskFormat::Raw,
        DiskFormat::Qcow2,
        DiskFormat::Vmdk,
        DiskFormat::Vdi,
        DiskFormat::Iso,
    ];

    pub fn parse(s: &str) -> Result<DiskFormat, DiskError> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| DiskError::UnknownFormat(s.chars().take(64).collect()))
    }

    /// The word of the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vdi => "vdi",
            DiskFormat::Iso => "iso",
        }
    }

    /// The download's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            DiskFormat::Raw => "img",
            other => other.as_str(),
        }
    }

    /// qemu-img's name of the format a raw disk is converted to, if any.
    fn qemu_img_format(self) -> Option<&'static str> {
        match self {
            DiskFormat::Raw | DiskFormat::Iso => None,
            other => Some(other.as_str()),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DiskFormat::Iso => "application/x-iso9660-image",
            _ => "application/octet-stream",
        }
    }
}

impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("unknown disk format {0:?}; use raw, qcow2, vmdk, vdi or iso")]
    UnknownFormat(String),
    #[error("image {id} cannot boot from a GRUB disk (that needs an x86 multiboot ELF): {why}")]
    NotBootable { id: String, why: String },
    #[error("this server cannot make disks: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Tool(#[from] crate::runtime::tool::ToolError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DiskError {
    let what = what.into();
    move |source| DiskError::Io { what, source }
}

/// A disk in the cache, ready to be sent.
#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub format: DiskFormat,
    /// What the download is called (`file_name`).
    pub file_name: String,
    /// Whether this request made it (else it came from the cache).
    pub made: bool,
}

/// The download's name: the image's name, tag and IncludeOS version, as
/// Mothership named generated disks after the image's tag and version;
/// jetpack's image downloads are already `NAME-TAG`, so the disk is that
/// with the version and the format's extension. Characters other than
/// letters, digits, `.`, `_` and `-` (a version is not checked when it is
/// stored) become `_`.
pub fn file_name(
    name: &str,
    tag: Option<&str>,
    includeos_version: Option<&str>,
    format: DiskFormat,
) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut parts = vec![clean(name)];
    parts.extend(tag.filter(|t| !t.is_empty()).map(clean));
    parts.extend(includeos_version.filter(|v| !v.is_empty()).map(clean));
    format!("{}.{}", parts.join("-"), format.extension())
}

type Key = (String, DiskFormat);

/// The disks service: the cache and the locks that make each disk once.
pub struct Disks {
    root: PathBuf,
    config: DisksConfig,
    locks: Mutex<HashMap<Key, Weak<Mutex<()>>>>,
}

impl Disks {
    /// The cache under `data_dir`; what a previous run left half made is
    /// removed.
    pub fn open(data_dir: &Path, config: DisksConfig) -> Result<Disks, DiskError> {
        let root = data_dir.join("disks");
        private::create_dir(&root).map_err(io_err(format!("creating {}", root.display())))?;
        let staging = root.join(".staging");
        match fs::remove_dir_all(&staging) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("removing {}", staging.display()))(e)),
        }
        Ok(Disks {
            root,
            config,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The disk of the image `reference` (an id or a prefix of one) in
    /// `format`: from the cache, or made now (a second or two) while
    /// requests for the same disk wait for it.
    pub fn disk(
        &self,
        catalog: &Catalog,
        reference: &str,
        format: DiskFormat,
    ) -> Result<Disk, DiskError> {
        let image = catalog.image(reference)?;
        let lock = self.lock_for(&image.id, format);
        let _made_once = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(disk) = self.cached(&image, format)? {
            return Ok(disk);
        }
        let blob = catalog.blobs().path(&image.sha256)?;
        let staging = self.root.join(".staging").join(random_name()?);
        private::create_dir(&staging).map_err(io_err(format!("creating {}", staging.display())))?;
        let made = make::make(&make::Job {
            config: &self.config,
            image: &image,
            blob: &blob,
            format,
            staging: &staging,
            limit: Duration::from_secs(self.config.timeout),
        })
        .and_then(|ready| self.publish(&image.id, format, &ready));
        // The staging folder goes whatever happened: what it held is
        // published (renamed away) or useless.
        let _ = fs::remove_dir_all(&staging);
        made?;
        tracing::info!(
            "made the {format} disk of image {} ({})",
            image.id,
            image.name
        );
        let mut disk = self.cached(&image, format)?.ok_or_else(|| DiskError::Io {
            what: format!("reading back the {format} disk of image {}", image.id),
            source: io::Error::from(io::ErrorKind::NotFound),
        })?;
        disk.made = true;
        Ok(disk)
    }

    /// Forgets every disk of an image (it was deleted).
    pub fn forget(&self, id: &ImageId) -> Result<(), DiskError> {
        let dir = self.root.join(id.as_str());
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("removing {}", dir.display()))(e)),
        }
    }

    /// Removes the disks of images not in `keep` (deleted while no server
    /// ran, or by a `--clean`); returns how many images' disks went.
    pub fn sweep(&self, keep: &HashSet<String>) -> Result<usize, DiskError> {
        let entries =
            fs::read_dir(&self.root).map_err(io_err(format!("reading {}", self.root.display())))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("reading {}", self.root.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".staging" || keep.contains(&name) {
                continue;
            }
            // Only what this module makes is removed: folders named by an
            // image id.
            if ImageId::new(&name).is_ok() {
                let path = entry.path();
                fs::remove_dir_all(&path)
                    .map_err(io_err(format!("removing {}", path.display())))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The one lock of a disk: requests for the same disk wait for the
    /// one that makes it, requests for others do not.
    fn lock_for(&self, id: &ImageId, format: DiskFormat) -> Arc<Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Locks nobody holds any more go, so the map stays as small as
        // the requests in flight.
        locks.retain(|_, lock| lock.strong_count() > 0);
        let key = (id.to_string(), format);
        if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(Mutex::new(()));
        locks.insert(key, Arc::downgrade(&lock));
        lock
    }

    fn dir_of(&self, id: &ImageId, format: DiskFormat) -> PathBuf {
        // Both parts are checked words (40 hex digits, a format's name).
        self.root.join(id.as_str()).join(format.as_str())
    }

    /// The disk in the cache, if it is there whole.
    fn cached(&self, image: &ImageRow, format: DiskFormat) -> Result<Option<Disk>, DiskError> {
        let dir = self.dir_of(&image.id, format);
        let path = dir.join("disk");
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let sha256 = match fs::read_to_string(dir.join("sha256")) {
            Ok(s) if is_sha256(s.trim()) => s.trim().to_string(),
            // A folder published without its digest is not ours: made again.
            _ => {
                let _ = fs::remove_dir_all(&dir);
                return Ok(None);
            }
        };
        Ok(Some(Disk {
            path,
            size: meta.len(),
            sha256,
            format,
            file_name: file_name(
                &image.name,
                image.tag.as_deref(),
                image.includeos_version.as_deref(),
                format,
            ),
            made: false,
        }))
    }

    /// Moves a made disk's folder into the cache in one rename.
    fn publish(&self, id: &ImageId, format: DiskFormat, ready: &Path) -> Result<(), DiskError> {
        let image_dir = self.root.join(id.as_str());
        private::create_dir(&image_dir)
            .map_err(io_err(format!("creating {}", image_dir.display())))?;
        let target = self.dir_of(id, format);
        fs::rename(ready, &target).map_err(io_err(format!(
            "publishing {} as {}",
            ready.display(),
            target.display()
        )))?;
        // The parent's entry must reach the disk too, or a crash could
        // lose a disk that was already served.
        if let Ok(d) = fs::File::open(&image_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_name() -> Result<String, DiskError> {
    crate::catalog::random_hex(12).map_err(DiskError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        for f in DiskFormat::ALL {
            assert_eq!(DiskFormat::parse(f.as_str()).unwrap(), f);
        }
        let err = DiskFormat::parse("vhdx").unwrap_err();
        assert!(err.to_string().contains("\"vhdx\""), "{err}");
        assert!(DiskFormat::parse("RAW").is_err());
        assert!(DiskFormat::parse("../raw").is_err());
        assert_eq!(DiskFormat::Raw.extension(), "img");
        assert_eq!(DiskFormat::Qcow2.qemu_img_format(), Some("qcow2"));
        assert_eq!(DiskFormat::Iso.qemu_img_format(), None);
    }

    #[test]
    fn file_names_carry_tag_and_version_and_nothing_unsafe() {
        assert_eq!(
            file_name("svc", Some("v1"), Some("0.15.1"), DiskFormat::Vmdk),
            "svc-v1-0.15.1.vmdk"
        );
        assert_eq!(file_name("svc", None, None, DiskFormat::Raw), "svc.img");
        assert_eq!(
            file_name("svc", Some(""), Some("v0.16 \"x\"/../y"), DiskFormat::Iso),
            "svc-v0.16__x__.._y.iso"
        );
    }

    #[test]
    fn one_lock_per_disk_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let config = DisksConfig {
            grub_dir: PathBuf::from("/nonexistent"),
            mkrescue: "grub-mkrescue".into(),
            xorriso: "xorriso".into(),
            qemu_img: "qemu-img".into(),
            timeout: 1,
        };
        let disks = Disks::open(dir.path(), config).unwrap();
        let id = ImageId::new(&"a".repeat(40)).unwrap();
        let a = disks.lock_for(&id, DiskFormat::Raw);
        let b = disks.lock_for(&id, DiskFormat::Raw);
        assert!(Arc::ptr_eq(&a, &b));
        let c = disks.lock_for(&id, DiskFormat::Iso);
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b, c));
        let _d = disks.lock_for(&id, DiskFormat::Vdi);
        assert_eq!(disks.locks.lock().unwrap().len(), 1, "unused locks go");
    }
}
