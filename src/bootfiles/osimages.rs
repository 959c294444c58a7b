//! OS images: an ISO (uploaded, a path on the server, a URL, or an ISO of
//! the store) extracted into a new dataset and sealed, by a job.
//!
//! Life: the row is made first (`downloading` for a URL, else
//! `preparing`), so the name and version are taken before any work and a
//! second request is a 409. The job downloads (progress on the row and the
//! job), checks the sha256 when one was given, then creates the dataset
//! `osimages/<uuid>`, extracts the ISO into it and seals it: `ready`. Any
//! failure destroys what was made (the staged download, the dataset) and
//! leaves the row `failed` with the reason, so the state is always true.
//! A server that starts and finds rows `downloading` or `preparing` (its
//! predecessor stopped during the work) does the same: their job died with
//! it, so they become `failed` ("interrupted by a restart") and their
//! half-made dataset goes (`settle`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fetch::{self, Staged};
use super::{check_name, extract, io_err, BootFiles, BootFilesError, OsImageRow, OsImageState};
use crate::jobs::{JobContext, JobKind};
use crate::names::{DatasetName, Tag};
use crate::runtime::datasets::DatasetError;
use crate::runtime::fetch_policy::redact_url;
use crate::store::blobs::StagedBlob;
use crate::store::jobs::JobRow;
use crate::store::{self, StoreError};

/// The reason given to OS images whose work a server stop cut short.
pub const INTERRUPTED: &str = "interrupted by a restart of the server";

/// Where an OS image's ISO comes from, checked.
pub enum Source {
    /// Received by the API (the request body), staged in the blob store.
    Upload(Box<StagedBlob>),
    /// A regular file on the server.
    Path(PathBuf),
    Url {
        url: String,
        sha256: Option<String>,
    },
    /// An ISO of the store, by name.
    Iso(Tag),
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Upload(_) => "upload",
            Source::Path(_) => "path",
            Source::Url { .. } => "url",
            Source::Iso(_) => "iso",
        }
    }
}

/// The ISO a job extracts: a staged file it owns (removed when dropped)
/// or a file it only reads.
enum IsoFile {
    Staged(Staged),
    Borrowed(PathBuf),
}

impl IsoFile {
    fn path(&self) -> &Path {
        match self {
            IsoFile::Staged(s) => &s.path,
            IsoFile::Borrowed(p) => p,
        }
    }
}

/// A path a user gave: absolute, with no symlink anywhere on the way (its
/// canonical form is itself), naming a regular file.
pub fn check_path(path: &str) -> Result<PathBuf, BootFilesError> {
    let given = Path::new(path);
    if !given.is_absolute() || path.contains('\0') {
        return Err(BootFilesError::Invalid(format!(
            "{path:?} is not an absolute path"
        )));
    }
    let real = std::fs::canonicalize(given).map_err(|e| {
        BootFilesError::Invalid(format!("{path:?} cannot be read on the server: {e}"))
    })?;
    if real != given {
        return Err(BootFilesError::Invalid(format!(
            "{path:?} goes through a symlink or '..' (it is {}); give the real path",
            real.display()
        )));
    }
    let meta = std::fs::symlink_metadata(&real)
        .map_err(|e| BootFilesError::Invalid(format!("{path:?}: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(BootFilesError::Invalid(format!(
            "{path:?} is not a regular file"
        )));
    }
    Ok(real)
}

impl BootFiles {
    pub fn osimages(&self) -> Result<Vec<OsImageRow>, BootFilesError> {
        Ok(self.with_store(|s| s.osimages())?)
    }

    pub fn osimage(&self, name: &str, version: &str) -> Result<OsImageRow, BootFilesError> {
        let (n, v) = names(name, version)?;
        self.with_store(|s| s.osimage(&n, &v))?
            .ok_or_else(|| BootFilesError::NotFound {
                what: "OS image",
                name: format!("{name} {version}"),
            })
    }

    /// Refuses a name and version that are taken (before an upload's body
    /// is read).
    pub fn check_osimage_free(&self, name: &str, version: &str) -> Result<(), BootFilesError> {
        let (n, v) = names(name, version)?;
        match self.with_store(|s| s.osimage(&n, &v))? {
            Some(_) => Err(BootFilesError::Taken {
                what: "OS image",
                name: format!("{name} {version}"),
            }),
            None => Ok(()),
        }
    }

    /// Records a new OS image and starts the job that makes it.
    pub fn create_osimage(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        source: Source,
    ) -> Result<(OsImageRow, JobRow), BootFilesError> {
        let (name, version) = names(name, version)?;
        let (shown, iso, state) = match &source {
            Source::Upload(_) => (String::new(), None, OsImageState::Preparing),
            Source::Path(p) => (p.display().to_string(), None, OsImageState::Preparing),
            Source::Url { url, .. } => (redact_url(url), None, OsImageState::Downloading),
            Source::Iso(i) => (i.to_string(), Some(i.clone()), OsImageState::Preparing),
        };
        if let Source::Iso(i) = &source {
            self.get(super::StoreKind::Iso, i.as_str())?;
        }
        let now = store::now();
        let dataset = DatasetName::new(&format!(
            "{}/{}",
            super::OSIMAGES,
            uuid::Uuid::new_v4().simple()
        ))?;
        let row = OsImageRow {
            name: name.clone(),
            version: version.clone(),
            source_kind: source.kind().to_string(),
            source: shown,
            iso,
            state,
            progress: 0.0,
            reason: None,
            dataset,
            job_id: None,
            size: None,
            sha256: None,
            created_at: now,
            updated_at: now,
        };
        self.with_store(|s| s.insert_osimage(&row))
            .map_err(|e| match e {
                StoreError::NameTaken(_) => BootFilesError::Taken {
                    what: "OS image",
                    name: format!("{name} {version}"),
                },
                // The ISO went between the check and the insert.
                StoreError::Corrupt(_) if row.iso.is_some() => BootFilesError::NotFound {
                    what: "ISO",
                    name: row.source.clone(),
                },
                e => e.into(),
            })?;
        let service = self.clone();
        let work_row = row.clone();
        let submitted = self.jobs.submit(
            JobKind::OsImage,
            Some(format!("{name} {version}")),
            move |ctx| {
                service
                    .make(&work_row, source, ctx)
                    .map(|()| {
                        serde_json::json!({"name": work_row.name, "version": work_row.version})
                    })
                    .map_err(Into::into)
            },
        );
        let job = match submitted {
            Ok(job) => job,
            Err(e) => {
                let _ = self.with_store(|s| s.delete_osimage(&name, &version));
                return Err(e.into());
            }
        };
        self.with_store(|s| s.set_osimage_job(&name, &version, job.id.as_str()))?;
        let row = OsImageRow {
            job_id: Some(job.id.to_string()),
            ..row
        };
        Ok((row, job))
    }

    /// Stores an uploaded ISO under `iso` in the ISO store, then makes an
    /// OS image from it (the image-service's `isoclient`, which kept the
    /// ISO in its store). The ISO was stored for this image alone: when
    /// the image cannot be made, it goes again.
    pub fn create_osimage_with_iso(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        iso: &str,
        staged: StagedBlob,
    ) -> Result<(OsImageRow, JobRow), BootFilesError> {
        let tag = check_name("ISO name", iso)?;
        names(name, version)?;
        self.put(super::StoreKind::Iso, iso, staged, "upload")?;
        self.create_osimage(name, version, Source::Iso(tag))
            .inspect_err(|_| {
                if let Err(undo) = self.delete(super::StoreKind::Iso, iso) {
                    tracing::warn!("removing the ISO {iso} again: {undo}");
                }
            })
    }

    /// The job's work: on failure the row says why and nothing is left.
    fn make(
        &self,
        row: &OsImageRow,
        source: Source,
        ctx: &JobContext,
    ) -> Result<(), BootFilesError> {
        let made = self.make_inner(row, source, ctx);
        if let Err(e) = &made {
            ctx.log(&format!("failed: {e}"));
            let left = match self.host.datasets().destroy(&row.dataset) {
                Ok(()) | Err(DatasetError::NotFound(_)) => None,
                Err(d) => Some(d.to_string()),
            };
            let cause = if self.is_stopping() {
                INTERRUPTED.to_string()
            } else {
                e.to_string()
            };
            let reason = match left {
                None => cause,
                Some(d) => format!("{cause} (and left behind: dataset {}: {d})", row.dataset),
            };
            self.set_state(row, OsImageState::Failed, 0.0, Some(&reason));
        }
        made
    }

    fn make_inner(
        &self,
        row: &OsImageRow,
        source: Source,
        ctx: &JobContext,
    ) -> Result<(), BootFilesError> {
        let iso = match source {
            Source::Upload(staged) => {
                let path = self
                    .staging
                    .join(format!("{}.iso", uuid::Uuid::new_v4().simple()));
                let info = staged.persist(&path)?;
                self.with_store(|s| {
                    s.set_osimage_iso_file(&row.name, &row.version, info.size, &info.sha256)
                })?;
                IsoFile::Staged(Staged {
                    path,
                    sha256: info.sha256,
                    size: info.size,
                })
            }
            Source::Path(path) => {
                let size = std::fs::metadata(&path)
                    .map_err(io_err(format!("reading {}", path.display())))?
                    .len();
                ctx.log(&format!("reading {}", path.display()));
                self.with_store(|s| s.set_osimage_iso_file(&row.name, &row.version, size, ""))?;
                IsoFile::Borrowed(path)
            }
            Source::Iso(name) => {
                let stored = self.stored_file(super::StoreKind::Iso, name.as_str())?;
                self.with_store(|s| {
                    s.set_osimage_iso_file(&row.name, &row.version, stored.size, &stored.sha256)
                })?;
                IsoFile::Borrowed(stored.path)
            }
            Source::Url { url, sha256 } => {
                let staged = self.download(row, &url, ctx)?;
                if let Some(expected) = sha256 {
                    if staged.sha256 != expected {
                        return Err(BootFilesError::Digest {
                            source_name: redact_url(&url),
                            expected,
                            actual: staged.sha256.clone(),
                        });
                    }
                }
                self.with_store(|s| {
                    s.set_osimage_iso_file(&row.name, &row.version, staged.size, &staged.sha256)
                })?;
                IsoFile::Staged(staged)
            }
        };
        self.set_state(row, OsImageState::Preparing, 0.0, None);
        if !extract::looks_like_iso(iso.path())? {
            return Err(BootFilesError::NotAnIso(match row.source_kind.as_str() {
                "upload" => "the upload".to_string(),
                _ => row.source.clone(),
            }));
        }
        ctx.log(&format!("extracting into dataset {}", row.dataset));
        let root = self.host.datasets().create(&row.dataset)?;
        // The root of what booting machines read, as the ISO's own would be.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(format!("creating {}", root.display())))?;
        extract::extract(iso.path(), &root, &|| ctx.cancelled() || self.is_stopping())?;
        drop(iso);
        self.host.datasets().seal(&row.dataset)?;
        self.set_state(row, OsImageState::Ready, 1.0, None);
        ctx.log("ready");
        Ok(())
    }

    /// Downloads the ISO, its progress on the row (at most every 250 ms)
    /// and on the job.
    fn download(
        &self,
        row: &OsImageRow,
        url: &str,
        ctx: &JobContext,
    ) -> Result<Staged, BootFilesError> {
        ctx.log(&format!("downloading {}", redact_url(url)));
        let mut last = Instant::now();
        let mut progress = |bytes: u64, length: Option<u64>| {
            if let Some(length) = length.filter(|l| *l > 0) {
                let fraction = (bytes as f64 / length as f64).min(1.0);
                ctx.progress(fraction);
                if last.elapsed() >= Duration::from_millis(250) {
                    last = Instant::now();
                    let _ = self
                        .with_store(|s| s.set_osimage_progress(&row.name, &row.version, fraction));
                }
            }
            !ctx.cancelled() && !self.is_stopping()
        };
        let staged = fetch::download(
            url,
            &self.policy,
            self.settings.stall,
            &self.staging,
            &mut progress,
            &mut |line| ctx.log(line),
        )?;
        ctx.log(&format!(
            "downloaded {} bytes, sha256 {}",
            staged.size, staged.sha256
        ));
        Ok(staged)
    }

    fn set_state(
        &self,
        row: &OsImageRow,
        state: OsImageState,
        progress: f64,
        reason: Option<&str>,
    ) {
        if let Err(e) = self
            .with_store(|s| s.set_osimage_state(&row.name, &row.version, state, progress, reason))
        {
            tracing::error!(
                "recording OS image {} {} {}: {e}",
                row.name,
                row.version,
                state.as_str()
            );
        }
    }

    /// Deletes an OS image: its dataset, then its row. Refused while its
    /// job runs (the job owns the dataset until it ends).
    pub fn delete_osimage(&self, name: &str, version: &str) -> Result<OsImageRow, BootFilesError> {
        let row = self.osimage(name, version)?;
        if row.state.is_busy() {
            return Err(BootFilesError::Busy(format!("{name} {version}")));
        }
        self.remove_osimage(&row)?;
        Ok(row)
    }

    /// Removes an OS image's dataset and row, whatever its state.
    pub(super) fn remove_osimage(&self, row: &OsImageRow) -> Result<(), BootFilesError> {
        match self.host.datasets().destroy(&row.dataset) {
            Ok(()) | Err(DatasetError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.with_store(|s| s.delete_osimage(&row.name, &row.version))?;
        Ok(())
    }

    /// At start: OS images a previous server left in work become failed,
    /// with their half-made datasets gone. Those another host of the fleet
    /// is making (their job runs there) are its own.
    pub(super) fn settle(&self) -> Result<(), BootFilesError> {
        for row in self.osimages()? {
            if !row.state.is_busy() || self.made_elsewhere(&row) {
                continue;
            }
            let reason = match self.host.datasets().destroy(&row.dataset) {
                Ok(()) | Err(DatasetError::NotFound(_)) => INTERRUPTED.to_string(),
                Err(e) => format!(
                    "{INTERRUPTED} (and left behind: dataset {}: {e})",
                    row.dataset
                ),
            };
            tracing::warn!(
                "OS image {} {} was {} when the server stopped: marked failed",
                row.name,
                row.version,
                row.state.as_str()
            );
            self.set_state(&row, OsImageState::Failed, 0.0, Some(&reason));
        }
        Ok(())
    }
}

impl BootFiles {
    /// Whether another host runs the job that makes `row`.
    fn made_elsewhere(&self, row: &OsImageRow) -> bool {
        self.made_on(row).is_some_and(|h| h != self.catalog.host())
    }
}

/// First path segments the file server keeps for itself: an OS image
/// named so would be served under `/<name>/<version>/` and never reached.
const RESERVED_NAMES: &[&str] = &["isos", "microkernels", "images", "boot"];

fn names(name: &str, version: &str) -> Result<(Tag, Tag), BootFilesError> {
    if RESERVED_NAMES.contains(&name) {
        return Err(BootFilesError::Invalid(format!(
            "{name:?} is the file server's own folder: choose another OS image name"
        )));
    }
    Ok((
        check_name("OS image name", name)?,
        check_name("OS image version", version)?,
    ))
}
