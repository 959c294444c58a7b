//! The `zfs` datasets driver (FreeBSD, feature `zfs`): create, snapshot,
//! clone, destroy, send and receive through libzfs_core (the `zfs-core`
//! crate), as ioctls without a process per call; everything libzfs_core
//! cannot do (list, sizes, properties, mounting, init) through the zfs(8)
//! driver it holds. libzfs_core never mounts, so a dataset it makes is
//! mounted with `zfs mount` before it is handed out.
//!
//! Streams are plain `zfs send` streams, so that either ZFS driver receives
//! what the other sent.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use zfs_core::{DataSetType, Defer, SendFlags, Zfs};

use super::zfs_cli::{classify, ZfsCliDatasets, ZFS};
use super::{io_err, DatasetError, DatasetInfo, Datasets, SnapshotInfo, SEALED};
use crate::names::{DatasetName, Name};
use crate::runtime::tool;
use crate::runtime::undo::Undo;

pub struct ZfsDatasets {
    /// Holds libzfs_core open (its init and fini are reference counted).
    zfs: Zfs,
    cli: ZfsCliDatasets,
}

impl ZfsDatasets {
    pub fn new(root: &str, mountpoint: &Path) -> Result<ZfsDatasets, DatasetError> {
        let zfs = Zfs::new()
            .map_err(|e| DatasetError::Unavailable("zfs", format!("libzfs_core: {e}")))?;
        Ok(ZfsDatasets {
            zfs,
            cli: ZfsCliDatasets::new(root, mountpoint),
        })
    }

    /// Mounts a dataset libzfs_core just made; on failure destroys it, so
    /// that a failed create or clone leaves nothing.
    fn mount_or_undo(&self, full: &str, full_c: &CString) -> Result<(), DatasetError> {
        let mut undo = Undo::new();
        undo.push_with(format!("dataset {full}"), || {
            self.zfs
                .destroy(full_c.as_c_str())
                .map_err(|e| errno(e, "destroying", full))
        });
        undo.check(tool::run(ZFS, &["mount", full]).map_err(|e| classify(e, full)))?;
        undo.commit();
        Ok(())
    }
}

/// A C string for libzfs_core; its own conversion panics on a NUL byte.
fn c(s: &str) -> Result<CString, DatasetError> {
    CString::new(s).map_err(|_| DatasetError::Io {
        what: format!("dataset name {s:?}"),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

/// An empty property list of the type zfs-core takes. That type belongs to
/// the `nvpair` crate, a dependency of zfs-core but not of ours, so it is
/// never named here: the signature of `Zfs::create` fixes it.
fn no_props<T: Default>(_signature: fn(&Zfs, CString, DataSetType, &T) -> io::Result<()>) -> T {
    T::default()
}

/// Maps libzfs_core's errno to the errors callers act on.
fn errno(e: io::Error, what: &str, name: &str) -> DatasetError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => DatasetError::NotFound(name.to_string()),
        Some(libc::EEXIST) => DatasetError::Exists(name.to_string()),
        Some(libc::EBUSY) => DatasetError::InUse(name.to_string()),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => DatasetError::NoSpace(name.to_string()),
        _ => DatasetError::Io {
            what: format!("{what} {name}"),
            source: e,
        },
    }
}

/// The errno of a call that may report per-item errors (lzc_snapshot).
fn first_error(e: zfs_core::Error) -> io::Error {
    match e {
        zfs_core::Error::Io { source } => source,
        zfs_core::Error::List { source } => match source.iter().next() {
            Some((_, e)) => e,
            None => io::Error::other("libzfs_core reported an empty error list"),
        },
    }
}

/// Which end of a copy failed.
enum Side {
    Read(io::Error),
    Write(io::Error),
}

fn pump(from: &mut dyn Read, to: &mut dyn Write) -> Result<u64, Side> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Side::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(Side::Write)?;
        total += n as u64;
    }
    to.flush().map_err(Side::Write)?;
    Ok(total)
}

/// A pipe whose ends do not leak into processes spawned meanwhile by other
/// threads: a leaked write end would keep the reader from ever seeing EOF.
fn pipe() -> Result<(File, File), DatasetError> {
    let (r, w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io_err("making a pipe")(e.into()))?;
    Ok((File::from(r), File::from(w)))
}

fn panicked(what: String) -> DatasetError {
    DatasetError::Io {
        what,
        source: io::Error::other("the libzfs_core thread panicked"),
    }
}

impl Datasets for ZfsDatasets {
    fn seals_read_only(&self) -> bool {
        true
    }

    fn driver(&self) -> &'static str {
        "zfs"
    }

    fn init(&self) -> Result<(), DatasetError> {
        self.cli.init()
    }

    fn path(&self, name: &DatasetName) -> PathBuf {
        self.cli.path(name)
    }

    fn exists(&self, name: &DatasetName) -> Result<bool, DatasetError> {
        Ok(self.zfs.exists(c(&self.cli.full(name))?))
    }

    fn create(&self, name: &DatasetName) -> Result<PathBuf, DatasetError> {
        let full = self.cli.full(name);
        let full_c = c(&full)?;
        self.zfs
            .create(full_c.clone(), DataSetType::Zfs, &Default::default())
            .map_err(|e| errno(e, "creating", &full))?;
        self.mount_or_undo(&full, &full_c)?;
        Ok(self.path(name))
    }

    fn seal(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let full = self.cli.full(name);
        if !self.zfs.exists(c(&full)?) {
            return Err(DatasetError::NotFound(full));
        }
        let snap = format!("{full}@{SEALED}");
        let snap_c = c(&snap)?;
        self.zfs
            .snapshot([snap_c.clone()])
            .map_err(|e| errno(first_error(e), "snapshotting", &snap))?;
        // A snapshot without read-only is not a seal.
        let mut undo = Undo::new();
        undo.push_with(format!("snapshot {snap}"), || {
            self.zfs
                .destroy_snaps([snap_c], Defer::No)
                .map_err(|(e, _)| errno(e, "destroying", &snap))
        });
        undo.check(tool::run(ZFS, &["set", "readonly=on", &full]).map_err(|e| classify(e, &full)))?;
        undo.commit();
        Ok(())
    }

    fn clone_sealed(
        &self,
        origin: &DatasetName,
        name: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        let snap = format!("{}@{SEALED}", self.cli.full(origin));
        let snap_c = c(&snap)?;
        let full = self.cli.full(name);
        let full_c = c(&full)?;
        let mut props = no_props(Zfs::create::<CString>);
        match self
            .zfs
            .clone_dataset(full_c.clone(), snap_c.clone(), &mut props)
        {
            Ok(()) => {}
            // ENOENT is either side: the origin's seal or the new one's parent.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOENT)
                    && !self.zfs.exists(snap_c.as_c_str()) =>
            {
                return Err(DatasetError::NotSealed(origin.to_string()))
            }
            Err(e) => return Err(errno(e, "cloning", &full)),
        }
        self.mount_or_undo(&full, &full_c)?;
        Ok(self.path(name))
    }

    fn destroy(&self, name: &DatasetName) -> Result<(), DatasetError> {
        let full = self.cli.full(name);
        let full_c = c(&full)?;
        if !self.zfs.exists(full_c.clone()) {
            return Err(DatasetError::NotFound(full));
        }
        let snap = format!("{full}@{SEALED}");
        let snap_c = c(&snap)?;
        if self.zfs.exists(snap_c.clone()) {
            match self.zfs.destroy_snaps([snap_c], Defer::No) {
                Ok(()) => {}
                // Clones (EEXIST) or holds (EBUSY) keep the seal, and with
                // it the dataset: nothing has changed yet.
                Err((e, _))
                    if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::EBUSY)) =>
                {
                    return Err(DatasetError::InUse(full))
                }
                Err((e, _)) => return Err(errno(e, "destroying", &snap)),
            }
        }
        // libzfs_core does not unmount; a mounted dataset is busy. Best
        // effort: one not mounted fails here and is fine, and one that
        // stays mounted makes the destroy below fail and say so.
        let _ = tool::run(ZFS, &["unmount", &full]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            match self.zfs.destroy(full_c.clone()) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                // A process still has a file open in it, or an unmount is
                // still settling: force the unmount and retry for a while.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    if Instant::now() >= deadline {
                        return Err(DatasetError::InUse(full));
                    }
                    // Best effort, one try of a retry loop: the next
                    // destroy says why if it still fails.
                    let _ = tool::run(ZFS, &["unmount", "-f", &full]);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                // What libzfs_core cannot settle (children, snapshots other
                // than the seal made by hand) goes through `zfs destroy -r`,
                // which says why in its own words.
                Err(_) => return self.cli.destroy(name),
            }
        }
    }

    fn list(&self) -> Result<Vec<DatasetInfo>, DatasetError> {
        self.cli.list()
    }

    fn usage(&self, name: &DatasetName) -> Result<u64, DatasetError> {
        self.cli.usage(name)
    }

    // libzfs_core sets no properties: quotas through zfs(8).
    fn has_quotas(&self) -> bool {
        true
    }

    fn set_quota(&self, name: &DatasetName, bytes: u64) -> Result<(), DatasetError> {
        self.cli.set_quota(name, bytes)
    }

    fn send(&self, name: &DatasetName, out: &mut dyn Write) -> Result<(), DatasetError> {
        let full = self.cli.full(name);
        let snap = format!("{full}@{SEALED}");
        let snap_c = c(&snap)?;
        if !self.zfs.exists(snap_c.clone()) {
            return Err(if self.zfs.exists(c(&full)?) {
                DatasetError::NotSealed(name.to_string())
            } else {
                DatasetError::NotFound(full)
            });
        }
        let (mut reader, writer) = pipe()?;
        let zfs = &self.zfs;
        let (sent, copied) = std::thread::scope(|s| {
            // The kernel writes the stream into the pipe while this thread
            // copies it out: `out` need not be a file descriptor.
            let sender = s.spawn(move || {
                let fd = writer.as_raw_fd();
                let sent = zfs.send(snap_c, None::<CString>, fd, SendFlags::default());
                drop(writer); // EOF for the reader
                sent
            });
            let copied = pump(&mut reader, out);
            // If `out` failed, closing the read end ends the send (EPIPE)
            // instead of leaving it blocked on a full pipe.
            drop(reader);
            (sender.join(), copied)
        });
        let sent = sent.map_err(|_| panicked(format!("sending {snap}")))?;
        match (sent, copied) {
            (_, Err(Side::Write(e))) => Err(io_err(format!("sending {snap}"))(e)),
            (Err(e), _) => Err(errno(e, "sending", &snap)),
            (Ok(()), Err(Side::Read(e))) => Err(io_err(format!("sending {snap}"))(e)),
            (Ok(()), Ok(_)) => Ok(()),
        }
    }

    fn receive(&self, name: &DatasetName, input: &mut dyn Read) -> Result<PathBuf, DatasetError> {
        let full = self.cli.full(name);
        let full_c = c(&full)?;
        if self.zfs.exists(full_c.clone()) {
            return Err(DatasetError::Exists(full));
        }
        let snap = format!("{full}@{SEALED}");
        let snap_c = c(&snap)?;
        let (reader, mut writer) = pipe()?;
        // A half-received dataset must not stay behind.
        let mut undo = Undo::new();
        undo.push_with(format!("dataset {full}"), || {
            if self.zfs.exists(full_c) {
                self.destroy(name)?;
            }
            Ok::<(), DatasetError>(())
        });
        let zfs = &self.zfs;
        let (received, copied) = std::thread::scope(|s| {
            let receiver = s.spawn(move || {
                let fd = reader.as_raw_fd();
                let received = zfs.receive(snap_c, None, None::<CString>, false, false, fd);
                // A receiver that stops early makes the writer fail (EPIPE)
                // instead of block.
                drop(reader);
                received
            });
            let copied = pump(input, &mut writer);
            drop(writer); // EOF: the stream ends here
            (receiver.join(), copied)
        });
        let result = received
            .map_err(|_| panicked(format!("receiving {full}")))
            .and_then(|received| match (received, copied) {
                // A failed read is the cause; the receiver then saw a short stream.
                (_, Err(Side::Read(e))) => Err(io_err(format!("receiving {full}"))(e)),
                (Err(e), _) => Err(errno(e, "receiving", &full)),
                (Ok(()), Err(Side::Write(e))) => Err(io_err(format!("receiving {full}"))(e)),
                (Ok(()), Ok(_)) => Ok(()),
            })
            .and_then(|()| {
                tool::run(ZFS, &["set", "readonly=on", &full]).map_err(|e| classify(e, &full))?;
                tool::run(ZFS, &["mount", &full]).map_err(|e| classify(e, &full))?;
                Ok(())
            });
        undo.check(result)?;
        undo.commit();
        Ok(self.path(name))
    }

    fn stream_kind(&self) -> &'static str {
        "zfs"
    }

    // A pod's snapshots are rare, operator-driven verbs: zfs(8) is enough.
    fn snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        self.cli.snapshot(name, snap)
    }

    fn rollback(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        self.cli.rollback(name, snap)
    }

    fn snapshots(&self, name: &DatasetName) -> Result<Vec<SnapshotInfo>, DatasetError> {
        self.cli.snapshots(name)
    }

    fn destroy_snapshot(&self, name: &DatasetName, snap: &Name) -> Result<(), DatasetError> {
        self.cli.destroy_snapshot(name, snap)
    }

    fn clone_snapshot(
        &self,
        origin: &DatasetName,
        snap: &Name,
        target: &DatasetName,
    ) -> Result<PathBuf, DatasetError> {
        self.cli.clone_snapshot(origin, snap, target)
    }
}
