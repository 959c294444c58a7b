//! Bases on this host, the `Host` verbs that make and remove them: list,
//! import (an archive, a staged archive, OCI layers) into a dataset that
//! is then sealed, and remove. What holds a base from above the runtime
//! (a builder is a base) is not known here: removal asks a `BaseHolds`
//! given by the caller's layer.

use std::path::{Path, PathBuf};

use super::archive::{self, ArchiveError};
use super::datasets::DatasetError;
use super::fetch_policy::redact_url;
use super::undo::Undo;
use super::{io_err, Host, Imported, RuntimeError, UrlSources};
use crate::names::{BaseId, DatasetName, Name};
use crate::store::{self, BaseRow, BaseState, Store, StoreError};

/// What holds a base from a layer above the runtime, which must not go
/// while held: the build layer's builders are bases. The runtime asks it
/// before a removal, and has it let go when the removal is forced.
pub trait BaseHolds {
    /// What holds `base`, if anything.
    fn holder(&self, store: &Store, base: &BaseRow) -> Result<Option<Holder>, StoreError>;
    /// Lets go of `holder`'s hold, for a forced removal.
    fn release(&self, store: &Store, holder: &Holder) -> Result<(), StoreError>;
}

/// A hold on a base, as the error refusing its removal names it:
/// "base B is {kind} {id}; {remedy}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub kind: &'static str,
    pub id: String,
    pub remedy: &'static str,
}

/// No layer above holds bases (a bench, or the build layer removing a
/// base it has already let go of).
pub struct NoHolds;

impl BaseHolds for NoHolds {
    fn holder(&self, _: &Store, _: &BaseRow) -> Result<Option<Holder>, StoreError> {
        Ok(None)
    }
    fn release(&self, _: &Store, _: &Holder) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Host {
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
        // something `base rm` can finish; each step below pushes its undo.
        self.store().insert_base(&row)?;
        let dataset = DatasetName::base(id);
        let mut undo = Undo::new();
        undo.push(format!("the row of base {}", id.short()), || {
            Ok(self.store().delete_base(id)?)
        });
        let path = undo.check(self.datasets.create(&dataset).map_err(RuntimeError::from))?;
        undo.push(format!("dataset {dataset}"), || {
            Ok(self.datasets.destroy(&dataset)?)
        });
        // A pod's "/" as tar(1) would make it, not as jetpack's umask (077)
        // did; an archive's own "." entry still wins.
        let made =
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err(format!("creating base {}", id.short())))
                .and_then(|_| fill(&path))
                .and_then(|_| Ok(self.datasets.seal(&dataset)?))
                .and_then(|_| Ok(self.store().set_base_state(id, BaseState::Ready)?));
        undo.check(made)?;
        undo.commit();
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

    /// Removes a base that nothing above the runtime holds (see
    /// `remove_base_with`); refused while pods use it, unless `force`,
    /// which removes those pods first (killing the running ones).
    pub fn remove_base(&self, reference: &str, force: bool) -> Result<BaseRow, RuntimeError> {
        self.remove_base_with(reference, force, &NoHolds)
    }

    /// Removes a base; refused while pods use it or `holds` says a layer
    /// above holds it (a builder), unless `force`, which removes those
    /// pods first (killing the running ones) and has the holder let go.
    pub fn remove_base_with(
        &self,
        reference: &str,
        force: bool,
        holds: &dyn BaseHolds,
    ) -> Result<BaseRow, RuntimeError> {
        let base = self.base(reference)?;
        let holder = holds.holder(&self.store(), &base)?;
        if let Some(holder) = holder {
            if !force {
                return Err(RuntimeError::BaseHeld {
                    base: base.name.to_string(),
                    holder,
                });
            }
            holds.release(&self.store(), &holder)?;
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
        let mut undo = Undo::new();
        undo.push(format!("base {} marked removing", base.name), || {
            Ok(self.store().set_base_state(&base.id, base.state)?)
        });
        match self.datasets.destroy(&DatasetName::base(&base.id)) {
            Ok(()) | Err(DatasetError::NotFound(_)) => {}
            Err(e) => return Err(undo.unwind(e.into())),
        }
        undo.commit();
        self.store().delete_base(&base.id)?;
        Ok(base)
    }
}
