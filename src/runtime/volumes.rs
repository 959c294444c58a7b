//! A pod's volumes and named volumes, the `Host` verbs: reading
//! `SOURCE:TARGET[:ro]`, checking both ends before a pod row exists (the
//! host path absolute, existing, canonical and clear of jetpack's data;
//! the pod path absolute without `..`), the binds a cell is given, and
//! named volumes (`volumes/NAME` datasets that outlive pods; removal is
//! refused while a pod names one). The mounts themselves are the jails
//! drivers' (`jails::volume_mounts`).

use std::path::{Component, Path, PathBuf};

use super::jails::volume_mounts::Bind;
use super::undo::Undo;
use super::{Host, RuntimeError};
use crate::names::{DatasetName, Name};
use crate::store::{self, PodVolume, VolumeRow};

/// At most this many volumes per pod.
pub const MAX_VOLUMES: usize = 32;
const MAX_PATH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {0:?}: expected SOURCE:TARGET or SOURCE:TARGET:ro (SOURCE a host path or a volume name)")]
    BadSpec(String),
    #[error("volume target {target:?}: {why}")]
    BadTarget { target: String, why: &'static str },
    #[error("volume host path {path:?}: {why}")]
    BadSource { path: String, why: String },
    #[error("at most {MAX_VOLUMES} volumes per pod")]
    TooMany,
    #[error("no volume {0:?} (make it with `jetpack volume create {0}`)")]
    NoSuchVolume(String),
    #[error("volume {name} is used by pod(s) {pods}; remove them first")]
    InUse { name: String, pods: String },
}

/// What `SOURCE:TARGET[:ro|:rw]` says, unchecked against the host.
pub fn parse_spec(word: &str) -> Result<PodVolume, VolumeError> {
    let bad = || VolumeError::BadSpec(word.to_string());
    if word.contains('\0') {
        return Err(bad());
    }
    let mut parts = word.split(':');
    let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() || source.is_empty() {
        return Err(bad());
    }
    Ok(PodVolume {
        source: source.to_string(),
        target: check_target(target)?,
        read_only,
    })
}

/// An absolute pod path without `.` or `..`, in its plain form; not the
/// root, nor /proc or /dev, which the cell mounts itself.
pub fn check_target(target: &str) -> Result<String, VolumeError> {
    let bad = |why| VolumeError::BadTarget {
        target: target.to_string(),
        why,
    };
    if !target.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if target.len() > MAX_PATH || target.contains('\0') {
        return Err(bad("too long or holds a NUL"));
    }
    let mut plain = String::new();
    for part in target.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(bad("holds . or .."));
        }
        plain.push('/');
        plain.push_str(part);
    }
    if plain.is_empty() {
        return Err(bad("the pod's root cannot be a volume"));
    }
    let first = plain.split('/').nth(1).unwrap_or("");
    if matches!(first, "proc" | "dev" | "sys") {
        return Err(bad("/proc, /dev and /sys are the cell's own"));
    }
    Ok(plain)
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Host {
    /// The volumes of a new pod from their `SOURCE:TARGET[:ro]` words:
    /// host paths canonical and checked, named volumes existing, no target
    /// twice.
    pub(super) fn pod_volumes(&self, words: &[String]) -> Result<Vec<PodVolume>, RuntimeError> {
        if words.len() > MAX_VOLUMES {
            return Err(VolumeError::TooMany.into());
        }
        let mut volumes: Vec<PodVolume> = Vec::new();
        for word in words {
            let mut v = parse_spec(word)?;
            if v.source.starts_with('/') {
                v.source = self.check_source(&v.source)?;
            } else {
                let name = Name::new("volume name", &v.source)?;
                if self.store().volume(name.as_str())?.is_none() {
                    return Err(VolumeError::NoSuchVolume(v.source).into());
                }
            }
            let clash = volumes
                .iter()
                .any(|o| overlaps(Path::new(&o.target), Path::new(&v.target)));
            if clash {
                return Err(VolumeError::BadTarget {
                    target: v.target,
                    why: "it is, holds or lies in another volume's target",
                }
                .into());
            }
            volumes.push(v);
        }
        Ok(volumes)
    }

    /// A host directory a pod may see: absolute, existing, a directory,
    /// canonical (symlinks resolved now; at start the walk refuses any
    /// that appear), and neither inside nor holding jetpack's data or the
    /// datasets of bases, pods and volumes.
    fn check_source(&self, path: &str) -> Result<String, RuntimeError> {
        let bad = |why: String| VolumeError::BadSource {
            path: path.to_string(),
            why,
        };
        let canonical = std::fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
        if !canonical.is_dir() {
            return Err(bad("not a directory".into()).into());
        }
        for kept in self.kept_paths() {
            if overlaps(&canonical, &kept) {
                return Err(bad(format!(
                    "it overlaps {}, which is jetpack's own",
                    kept.display()
                ))
                .into());
            }
        }
        canonical
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| bad("not UTF-8".into()).into())
    }

    /// jetpack's data directory and where its datasets live.
    fn kept_paths(&self) -> Vec<PathBuf> {
        let mut kept = vec![self.config.data_dir.clone()];
        for child in ["bases", "pods", "volumes"] {
            if let Ok(name) = DatasetName::new(child) {
                kept.push(self.datasets.path(&name));
            }
        }
        kept.into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .filter(|p| p.components().any(|c| matches!(c, Component::Normal(_))))
            .collect()
    }

    /// The binds a pod's cell is given: named volumes at their dataset's
    /// (canonical) path.
    pub(super) fn cell_volumes(&self, volumes: &[PodVolume]) -> Vec<Bind> {
        volumes
            .iter()
            .map(|v| {
                let source = match v.named().map(|n| DatasetName::new(&format!("volumes/{n}"))) {
                    Some(Ok(dataset)) => {
                        let p = self.datasets.path(&dataset);
                        std::fs::canonicalize(&p).unwrap_or(p)
                    }
                    // A name the store holds is a valid one; a bad one
                    // fails the start with its path.
                    _ => PathBuf::from(&v.source),
                };
                Bind {
                    source,
                    target: v.target.clone(),
                    read_only: v.read_only,
                }
            })
            .collect()
    }

    /// Makes the named volume `name`: its row and its dataset, or neither.
    pub fn create_volume(&self, name: &str) -> Result<VolumeRow, RuntimeError> {
        let name = Name::new("volume name", name)?;
        let dataset = DatasetName::new(&format!("volumes/{name}"))?;
        let row = VolumeRow {
            name,
            created_at: store::now(),
        };
        self.store().insert_volume(&row)?;
        let mut undo = Undo::new();
        undo.push(format!("the row of volume {}", row.name), || {
            Ok(self
                .store()
                .delete_volume_unused(row.name.as_str())
                .map(drop)?)
        });
        let parent = DatasetName::new("volumes")?;
        let made = (|| {
            if !self.datasets.exists(&parent)? {
                match self.datasets.create(&parent) {
                    Ok(_) | Err(super::DatasetError::Exists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.datasets.create(&dataset).map_err(RuntimeError::from)
        })();
        undo.check(made)?;
        undo.commit();
        Ok(row)
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRow>, RuntimeError> {
        Ok(self.store().volumes()?)
    }

    /// The pods (running or not) that name the volume `name`, by id.
    pub fn volume_users(&self, name: &Name) -> Result<Vec<String>, RuntimeError> {
        Ok(users(&self.pods()?, name))
    }

    /// Every named volume with the pods that name it (the pods read once).
    pub fn volumes_in_use(&self) -> Result<Vec<(VolumeRow, Vec<String>)>, RuntimeError> {
        let pods = self.pods()?;
        Ok(self
            .volumes()?
            .into_iter()
            .map(|row| {
                let users = users(&pods, &row.name);
                (row, users)
            })
            .collect())
    }

    /// Where a named volume's data lives on this host.
    pub fn volume_path(&self, name: &Name) -> Result<PathBuf, RuntimeError> {
        Ok(self
            .datasets
            .path(&DatasetName::new(&format!("volumes/{name}"))?))
    }

    /// Removes a named volume and its data; refused while any pod (running
    /// or not) names it, since its next start would find it gone.
    pub fn remove_volume(&self, name: &str) -> Result<VolumeRow, RuntimeError> {
        let row = self
            .store()
            .volume(name)?
            .ok_or_else(|| VolumeError::NoSuchVolume(name.to_string()))?;
        // Bound first: the store's guard must be dropped before `self.pod`
        // takes it again.
        let deleted = self.store().delete_volume_unused(name)?;
        if let Err(pods) = deleted {
            let labels: Vec<String> = pods
                .iter()
                .map(|id| {
                    self.pod(id)
                        .map(|p| p.label())
                        .unwrap_or_else(|_| id.clone())
                })
                .collect();
            return Err(VolumeError::InUse {
                name: name.to_string(),
                pods: labels.join(", "),
            }
            .into());
        }
        let dataset = DatasetName::new(&format!("volumes/{}", row.name))?;
        match self.datasets.destroy(&dataset) {
            Ok(()) | Err(super::DatasetError::NotFound(_)) => Ok(row),
            Err(e) => Err(e.into()),
        }
    }
}

/// The ids of the pods of `pods` that name the volume `name`.
fn users(pods: &[super::Pod], name: &Name) -> Vec<String> {
    pods.iter()
        .filter(|p| {
            p.row
                .volumes
                .iter()
                .any(|v| v.named() == Some(name.as_str()))
        })
        .map(|p| p.row.id.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_read_and_targets_checked() {
        let v = parse_spec("/srv/www:/var/www:ro").unwrap();
        assert_eq!(
            (v.source.as_str(), v.target.as_str(), v.read_only),
            ("/srv/www", "/var/www", true)
        );
        let v = parse_spec("data://data//x/").unwrap();
        assert_eq!((v.target.as_str(), v.read_only), ("/data/x", false));
        assert!(parse_spec("data:/d:rw").is_ok());
        for bad in [
            "/a",
            "/a:/b:xx",
            "/a:/b:ro:1",
            ":/b",
            "/a:b",
            "/a:/b/../c",
            "/a:/",
            "/a:/proc/x",
            "/a:/dev",
            "/a:/./b",
            "/a\0:/b",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlap_is_either_way() {
        assert!(overlaps(Path::new("/var/jetpack"), Path::new("/var")));
        assert!(overlaps(Path::new("/var"), Path::new("/var/jetpack")));
        assert!(!overlaps(Path::new("/var/jet"), Path::new("/var/jetpack")));
    }
}
