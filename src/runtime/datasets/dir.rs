//! The `dir` datasets driver: plain directories under the root mountpoint,
//! for hosts without a pool. A seal is a marker beside the directory (the
//! tree is never written again); a clone is a full copy (`cp -a`, reflinked
//! where the file system can); a stream is a tar archive.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{io_err, DatasetError, DatasetInfo, Datasets};
use crate::names::DatasetName;
use crate::runtime::tool;

pub struct DirDatasets {
    root: PathBuf,
}

impl DirDatasets {
    pub fn new(root: &Path) -> DirDatasets {
        DirDatasets { root: root.to_path_buf() }
    }

    /// The seal marker: a name no dataset can have (dataset names have no dot).
    fn marker(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.sealed"))
    }

    /// A sibling for work in progress, renamed into place when complete so
    /// that a crash never leaves a half-made dataset under its real name.
    fn staging(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.partial"))
    }

    fn remove_tree(path: &Path) -> Result<(), DatasetError> {
        match fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
        }
    }
}

fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else { continue };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

impl Datasets for DirDatasets {
    fn driver(&self) -> &'static str {
        "dir"
    }

    fn init(&self) -> Result<(), DatasetError> {
        for child in ["bases", "pods"] {
            let p = self.root.join(child);
            fs::create_dir_all(&p).map_err(io_err(format!("creating {}", p.display())))?;
        }
        Ok(())
    }

    fn path(&self, name: &DatasetName) -> PathBuf {
        self.root.join(name.as_str())
    }

    fn exists(&self, name: &DatasetName) -> Result<bool, DatasetError> {
        Ok(self.path(name).is_dir())
    }

    fn create(&self, name: &DatasetName) -> Result<PathBuf, DatasetError> {
        let path = self.path(name);
        match fs::create_dir(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(DatasetError::Exists(name.to_string())),
            Err(e) => Err(io_err(format!("creating {}", path.display()))(e)),
        }
    }

    fn seal(&self, name: &DatasetName) -> Result<(), DatasetError> {
        if !self.exists(name)? {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        let marker = self.marker(name);
        fs::write(&marker, b"").map_err(io_err(format!("sealing {name}")))
    }

    fn clone_sealed(&self, origin: &DatasetName, name: &DatasetName) -> Result<PathBuf, DatasetError> {
        if !self.marker(origin).exists() {
            return Err(DatasetError::NotSealed(origin.to_string()));
        }
        let target = self.path(name);
        if target.exists() {
            return Err(DatasetError::Exists(name.to_string()));
        }
        let staging = self.staging(name);
        Self::remove_tree(&staging)?;
        let source = self.path(origin).join(".");
        let copied = if cfg!(target_os = "linux") {
            tool::run("cp", &[std::ffi::OsStr::new("-a"), "--reflink=auto".as_ref(), source.as_os_str(), staging.as_os_str()])
        } else {
            tool::run("cp", &[std::ffi::OsStr::new("-a"), source.as_os_str(), staging.as_os_str()])
        };
        let result = copied
            .map_err(|e| {
                if e.stderr().contains("No space left") {
                    DatasetError::NoSpace(name.to_string())
                } else {
                    DatasetError::Tool(e)
                }
            })
            .and_then(|_| fs::rename(&staging, &target).map_err(io_err(format!("creating {name}"))));
        if let Err(e) = result {
            let _ = Self::remove_tree(&staging);
            return Err(e);
        }
        Ok(target)
    }

    fn destroy(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        // Clones are copies, so nothing depends on a base here; the store
        // refuses removal of a base that pods use.
        let marker = self.marker(name);
        if marker.exists() {
            fs::remove_file(&marker).map_err(io_err(format!("unsealing {name}")))?;
        }
        // Rename first so that a crash mid-removal leaves only a staging name.
        let doomed = self.root.join(format!("{name}.removing"));
        Self::remove_tree(&doomed)?;
        fs::rename(&path, &doomed).map_err(io_err(format!("removing {name}")))?;
        Self::remove_tree(&doomed)
    }

    fn list(&self) -> Result<Vec<DatasetInfo>, DatasetError> {
        let mut out = Vec::new();
        for child in ["bases", "pods"] {
            let dir = self.root.join(child);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for entry in rd.flatten() {
                let file_name = entry.file_name();
                let Some(id) = file_name.to_str() else { continue };
                let Ok(name) = DatasetName::new(&format!("{child}/{id}")) else {
                    continue; // staging names and markers
                };
                if !entry.path().is_dir() {
                    continue;
                }
                let used = disk_usage(&entry.path());
                out.push(DatasetInfo {
                    sealed: self.marker(&name).exists(),
                    name: name.to_string(),
                    used,
                    referenced: used,
                    mountpoint: entry.path(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn usage(&self, name: &DatasetName) -> Result<u64, DatasetError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        Ok(disk_usage(&path))
    }

    fn send(&self, name: &DatasetName, out: &mut dyn Write) -> Result<(), DatasetError> {
        if !self.marker(name).exists() {
            return Err(DatasetError::NotSealed(name.to_string()));
        }
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        builder
            .append_dir_all(".", self.path(name))
            .and_then(|_| builder.finish())
            .map_err(io_err(format!("sending {name}")))
    }

    fn receive(&self, name: &DatasetName, input: &mut dyn Read) -> Result<PathBuf, DatasetError> {
        let target = self.path(name);
        if target.exists() {
            return Err(DatasetError::Exists(name.to_string()));
        }
        let staging = self.staging(name);
        Self::remove_tree(&staging)?;
        let result = fs::create_dir(&staging)
            .and_then(|_| {
                let mut archive = tar::Archive::new(input);
                archive.set_preserve_permissions(true);
                archive.set_preserve_ownerships(true);
                archive.set_overwrite(false);
                archive.unpack(&staging)
            })
            .and_then(|_| fs::rename(&staging, &target))
            .map_err(io_err(format!("receiving {name}")));
        if let Err(e) = result {
            let _ = Self::remove_tree(&staging);
            return Err(e);
        }
        self.seal(name)?;
        Ok(target)
    }
}
