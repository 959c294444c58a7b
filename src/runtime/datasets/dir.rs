//! The `dir` datasets driver: plain directories under the root mountpoint,
//! for hosts without a pool. A seal is a marker beside the directory (the
//! tree is never written again); a clone is an overlay mount on Linux
//! (`overlay`), else a full copy (`cp -a`, reflinked where the file system
//! can); a stream is a tar archive.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
use super::overlay;
use super::{io_err, DatasetError, DatasetInfo, Datasets, SnapshotInfo};
use crate::names::{DatasetName, Name};
use crate::runtime::tool;
use crate::runtime::undo::Undo;

pub struct DirDatasets {
    root: PathBuf,
}

impl DirDatasets {
    pub fn new(root: &Path) -> DirDatasets {
        #[cfg(target_os = "linux")]
        overlay::remount(root, |clone| {
            let origin = fs::read_to_string(clone.with_extension("origin")).ok()?;
            let origin = DatasetName::new(&origin).ok()?;
            Some(root.join(origin.as_str()))
        });
        DirDatasets {
            root: root.to_path_buf(),
        }
    }

    /// The seal marker: a name no dataset can have (dataset names have no dot).
    fn marker(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.sealed"))
    }

    /// Where a clone records its origin, so that the origin cannot be
    /// destroyed under it (ZFS refuses that too).
    fn origin_note(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.origin"))
    }

    fn clones_of(&self, origin: &DatasetName) -> Vec<String> {
        let mut clones = Vec::new();
        // The containers below the root, as ZFS lists them (the OS images'
        // is made by the boot files service).
        for child in ["bases", "pods", "osimages"] {
            let Ok(rd) = fs::read_dir(self.root.join(child)) else {
                continue;
            };
            for entry in rd.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "origin")
                    && fs::read_to_string(&path).is_ok_and(|o| o == origin.as_str())
                {
                    clones.push(path.with_extension("").display().to_string());
                }
            }
        }
        clones
    }

    /// A sibling for work in progress, renamed into place when complete so
    /// that a crash never leaves a half-made dataset under its real name.
    fn staging(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.partial"))
    }

    /// Where a dataset's own snapshots are kept: `<name>.snaps/<snap>/tree`
    /// and its creation time in `<snap>/created`. Work in progress is
    /// `.partial-<snap>`, a name no snapshot has (they start with a letter
    /// or digit).
    fn snaps(&self, name: &DatasetName) -> PathBuf {
        self.root.join(format!("{name}.snaps"))
    }

    fn snap_dir(&self, name: &DatasetName, snap: &Name) -> PathBuf {
        self.snaps(name).join(snap.as_str())
    }

    fn existing_snap(&self, name: &DatasetName, snap: &Name) -> Result<PathBuf, DatasetError> {
        let dir = self.snap_dir(name, snap);
        if dir.join("tree").is_dir() {
            Ok(dir)
        } else {
            Err(DatasetError::NoSnapshot(name.to_string(), snap.to_string()))
        }
    }

    fn remove_tree(path: &Path) -> Result<(), DatasetError> {
        match fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
        }
    }
}

/// Copies the tree `from` as a new directory `to` (which must not exist),
/// keeping modes, owners and links; reflinked where the file system can.
fn copy_tree(from: &Path, to: &Path, name: &DatasetName) -> Result<(), DatasetError> {
    let source = from.join(".");
    let mut args: Vec<&std::ffi::OsStr> = vec!["-a".as_ref()];
    if cfg!(target_os = "linux") {
        args.push("--reflink=auto".as_ref());
    }
    args.extend([source.as_os_str(), to.as_os_str()]);
    tool::run("cp", &args).map(drop).map_err(|e| {
        if e.stderr().contains("No space left") {
            DatasetError::NoSpace(name.to_string())
        } else {
            DatasetError::Tool(e)
        }
    })
}

/// Removes a file that a failed step may or may not have made.
fn remove_file_if_any(path: &Path) -> Result<(), DatasetError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
    }
}

/// What a dataset holds of its own: an overlay clone's upper layer (as a
/// ZFS clone's `used`), or the whole tree.
fn own_usage(path: &Path) -> u64 {
    #[cfg(target_os = "linux")]
    if overlay::is_overlay(path) {
        return disk_usage(&overlay::layers_of(path).join("upper"));
    }
    disk_usage(path)
}

fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
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
        // The containers below the root, as ZFS lists them (the OS images'
        // is made by the boot files service).
        for child in ["bases", "pods", "osimages"] {
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
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(DatasetError::Exists(name.to_string()))
            }
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

    fn clone_sealed(
        &self,
        origin: &DatasetName,
        name: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        if !self.marker(origin).exists() {
            return Err(DatasetError::NotSealed(origin.to_string()));
        }
        let target = self.path(name);
        if target.exists() {
            return Err(DatasetError::Exists(name.to_string()));
        }
        #[cfg(target_os = "linux")]
        {
            let note = self.origin_note(name);
            fs::write(&note, origin.as_str()).map_err(io_err(format!("creating {name}")))?;
            match overlay::clone(&self.path(origin), &target) {
                Ok(true) => return Ok(target),
                Ok(false) => remove_file_if_any(&note)?,
                Err(e) => {
                    remove_file_if_any(&note)?;
                    return Err(io_err(format!("creating {name}"))(e));
                }
            }
        }
        let staging = self.staging(name);
        Self::remove_tree(&staging)?;
        // Pushed before the steps: a copy or a write that fails half way
        // leaves its part. Run newest first: the copy, then the note.
        let note = self.origin_note(name);
        let mut undo = Undo::new();
        undo.push_with(format!("origin note {}", note.display()), || {
            remove_file_if_any(&note)
        });
        undo.push_with(format!("staging copy {}", staging.display()), || {
            Self::remove_tree(&staging)
        });
        let result = copy_tree(&self.path(origin), &staging, name)
            .and_then(|_| {
                fs::write(&note, origin.as_str()).map_err(io_err(format!("creating {name}")))
            })
            .and_then(|_| {
                fs::rename(&staging, &target).map_err(io_err(format!("creating {name}")))
            });
        undo.check(result)?;
        undo.commit();
        Ok(target)
    }

    fn destroy(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        if !self.clones_of(name).is_empty() {
            return Err(DatasetError::InUse(name.to_string()));
        }
        let marker = self.marker(name);
        if marker.exists() {
            fs::remove_file(&marker).map_err(io_err(format!("unsealing {name}")))?;
        }
        #[cfg(target_os = "linux")]
        if overlay::is_overlay(&path) {
            overlay::remove(&path).map_err(io_err(format!("removing {name}")))?;
        }
        // Rename first so that a crash mid-removal leaves only a staging name.
        let doomed = self.root.join(format!("{name}.removing"));
        Self::remove_tree(&doomed)?;
        fs::rename(&path, &doomed).map_err(io_err(format!("removing {name}")))?;
        let note = self.origin_note(name);
        if note.exists() {
            fs::remove_file(&note).map_err(io_err(format!("removing {name}")))?;
        }
        Self::remove_tree(&doomed)?;
        Self::remove_tree(&self.snaps(name))
    }

    fn list(&self) -> Result<Vec<DatasetInfo>, DatasetError> {
        let mut out = Vec::new();
        // The containers below the root, as ZFS lists them (the OS images'
        // is made by the boot files service).
        for child in ["bases", "pods", "osimages"] {
            let dir = self.root.join(child);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for entry in rd.flatten() {
                let file_name = entry.file_name();
                let Some(id) = file_name.to_str() else {
                    continue;
                };
                let Ok(name) = DatasetName::new(&format!("{child}/{id}")) else {
                    continue; // staging names and markers
                };
                if !entry.path().is_dir() {
                    continue;
                }
                out.push(DatasetInfo {
                    sealed: self.marker(&name).exists(),
                    name: name.to_string(),
                    used: own_usage(&entry.path()),
                    referenced: disk_usage(&entry.path()),
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
        Ok(own_usage(&path))
    }

    fn send(&self, name: &DatasetName, out: &mut dyn Write) -> Result<(), DatasetError> {
        if !self.marker(name).exists() {
            return Err(DatasetError::NotSealed(name.to_string()));
        }
        let mut builder = tar::Builder::new(FramedWriter::new(out));
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        builder
            .append_dir_all(".", self.path(name))
            .and_then(|_| builder.into_inner())
            .and_then(|framed| framed.finish())
            .map_err(io_err(format!("sending {name}")))
    }

    fn receive(&self, name: &DatasetName, input: &mut dyn Read) -> Result<PathBuf, DatasetError> {
        let target = self.path(name);
        if target.exists() {
            return Err(DatasetError::Exists(name.to_string()));
        }
        let staging = self.staging(name);
        Self::remove_tree(&staging)?;
        // A stream cut short leaves a partial tree.
        let mut undo = Undo::new();
        undo.push_with(format!("staging tree {}", staging.display()), || {
            Self::remove_tree(&staging)
        });
        let result = fs::create_dir(&staging)
            .and_then(|_| {
                let mut framed = FramedReader::new(input);
                let mut archive = tar::Archive::new(&mut framed);
                archive.set_preserve_permissions(true);
                archive.set_preserve_ownerships(true);
                archive.set_overwrite(false);
                archive.unpack(&staging)?;
                framed.read_to_end_marker()
            })
            .and_then(|_| fs::rename(&staging, &target))
            .map_err(io_err(format!("receiving {name}")));
        undo.check(result)?;
        undo.commit();
        self.seal(name)?;
        Ok(target)
    }

    fn snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let path = self.path(name);
        if !path.is_dir() {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        let dir = self.snap_dir(name, snap);
        if dir.exists() {
            return Err(DatasetError::SnapshotExists(
                name.to_string(),
                snap.to_string(),
            ));
        }
        let snaps = self.snaps(name);
        let staging = snaps.join(format!(".partial-{snap}"));
        Self::remove_tree(&staging)?;
        let mut undo = Undo::new();
        undo.push_with(format!("staging snapshot {}", staging.display()), || {
            Self::remove_tree(&staging)
        });
        let now = crate::store::now().to_string();
        let result = fs::create_dir_all(&staging)
            .map_err(io_err(format!("snapshotting {name}")))
            .and_then(|_| copy_tree(&path, &staging.join("tree"), name))
            .and_then(|_| {
                fs::write(staging.join("created"), now)
                    .and_then(|_| fs::rename(&staging, &dir))
                    .map_err(io_err(format!("snapshotting {name}")))
            });
        undo.check(result)?;
        undo.commit();
        Ok(())
    }

    fn rollback(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let tree = self.existing_snap(name, snap)?.join("tree");
        let path = self.path(name);
        // The dataset's directory stays (an overlay clone is mounted on
        // it): its entries go, then the snapshot's are copied in. Not
        // atomic: a failure half way leaves the pod between the two, and
        // a second rollback finishes it.
        let what = format!("rolling {name} back to {snap}");
        for entry in fs::read_dir(&path).map_err(io_err(what.clone()))? {
            let entry = entry.map_err(io_err(what.clone()))?;
            let p = entry.path();
            let kind = entry.file_type().map_err(io_err(what.clone()))?;
            if kind.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            }
            .map_err(io_err(what.clone()))?;
        }
        copy_tree(&tree, &path, name)
    }

    fn snapshots(&self, name: &DatasetName) -> Result<Vec<SnapshotInfo>, DatasetError> {
        if !self.path(name).is_dir() {
            return Err(DatasetError::NotFound(name.to_string()));
        }
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.snaps(name)) else {
            return Ok(out);
        };
        for entry in rd.flatten() {
            let file_name = entry.file_name();
            let Some(snap) = file_name
                .to_str()
                .and_then(|s| Name::new("snapshot", s).ok())
            else {
                continue; // work in progress
            };
            let created = fs::read_to_string(entry.path().join("created"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            out.push(SnapshotInfo {
                name: snap.to_string(),
                created,
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    fn destroy_snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        let dir = self.existing_snap(name, snap)?;
        Self::remove_tree(&dir)
    }

    fn clone_snapshot(
        &self,
        origin: &DatasetName,
        snap: &Name,
        target: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        let tree = self.existing_snap(origin, snap)?.join("tree");
        let path = self.path(target);
        if path.exists() {
            return Err(DatasetError::Exists(target.to_string()));
        }
        let staging = self.staging(target);
        Self::remove_tree(&staging)?;
        let mut undo = Undo::new();
        undo.push_with(format!("staging copy {}", staging.display()), || {
            Self::remove_tree(&staging)
        });
        let result = copy_tree(&tree, &staging, target).and_then(|_| {
            fs::rename(&staging, &path).map_err(io_err(format!("creating {target}")))
        });
        undo.check(result)?;
        undo.commit();
        Ok(path)
    }
}

// A tar archive gives no sure sign of its own end: cut at a header boundary
// it still reads as complete. The dir driver's stream therefore frames the
// tar in chunks (`u32` big-endian length, bytes) closed by an empty chunk and
// the sha256 of everything before it; a stream cut anywhere, or altered, is
// an error on receive.

const MAGIC: &[u8; 8] = b"JPDIR\x00\x00\x01";

struct FramedWriter<W: Write> {
    out: W,
    hasher: sha2::Sha256,
    started: bool,
}

impl<W: Write> FramedWriter<W> {
    fn new(out: W) -> Self {
        FramedWriter {
            out,
            hasher: sha2::Digest::new(),
            started: false,
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.out.write_all(MAGIC)?;
            self.started = true;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.start()?;
        self.out.write_all(&0u32.to_be_bytes())?;
        let digest = sha2::Digest::finalize(self.hasher);
        self.out.write_all(&digest)?;
        self.out.flush()
    }
}

impl<W: Write> Write for FramedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.start()?;
        let n = buf.len().min(1 << 20);
        self.out.write_all(&(n as u32).to_be_bytes())?;
        self.out.write_all(&buf[..n])?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

struct FramedReader<R: Read> {
    input: R,
    hasher: sha2::Sha256,
    left: usize,
    state: FrameState,
}

#[derive(PartialEq)]
enum FrameState {
    Start,
    Chunks,
    Ended,
}

fn broken(why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("dir stream: {why}"),
    )
}

impl<R: Read> FramedReader<R> {
    fn new(input: R) -> Self {
        FramedReader {
            input,
            hasher: sha2::Digest::new(),
            left: 0,
            state: FrameState::Start,
        }
    }

    fn next_chunk(&mut self) -> std::io::Result<()> {
        if self.state == FrameState::Start {
            let mut magic = [0u8; 8];
            self.input
                .read_exact(&mut magic)
                .map_err(|_| broken("not a jetpack dir stream"))?;
            if &magic != MAGIC {
                return Err(broken("not a jetpack dir stream"));
            }
            self.state = FrameState::Chunks;
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| broken("cut short"))?;
        self.left = u32::from_be_bytes(len) as usize;
        if self.left == 0 {
            let mut digest = [0u8; 32];
            self.input
                .read_exact(&mut digest)
                .map_err(|_| broken("cut short"))?;
            let actual = sha2::Digest::finalize(std::mem::take(&mut self.hasher));
            if actual.as_slice() != digest {
                return Err(broken("checksum mismatch"));
            }
            self.state = FrameState::Ended;
        }
        Ok(())
    }

    /// Consumes what tar left unread, up to and including the end marker.
    fn read_to_end_marker(&mut self) -> std::io::Result<()> {
        let mut sink = [0u8; 8192];
        while self.read(&mut sink)? > 0 {}
        Ok(())
    }
}

impl<R: Read> Read for FramedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.left == 0 {
            if self.state == FrameState::Ended {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let want = buf.len().min(self.left);
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(broken("cut short"));
        }
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.left -= n;
        Ok(n)
    }
}
