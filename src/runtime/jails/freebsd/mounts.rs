//! The file systems mounted in a cell's root: devfs with its ruleset and,
//! for a root of Linux programs, the Linux ABI's (`cell_mounts` says which),
//! never through a symlink; and their removal, inner mounts first.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{unmount, MntFlags};

use crate::runtime::jails::jail_params::{
    cell_mounts, mount_args, real_dirs_below, unmount_order, CellMount,
};
use crate::runtime::jails::{CellSpec, JailError, POLL};
use crate::runtime::tool;
use crate::runtime::undo::Undo;

/// Mounts the cell's file systems (`cell_mounts`: devfs, and the Linux
/// ABI's for a Linux root) in its root; on an error, none stays.
pub(super) fn mount_cell(spec: &CellSpec) -> Result<(), String> {
    // One inverse for all: `unmount_cell` takes off whatever is mounted,
    // and a mount that failed half way may have left its part.
    let mut undo = Undo::new();
    undo.push_with(format!("mounts under {}", spec.root.display()), || {
        unmount_cell(&spec.root)
    });
    for mount in cell_mounts(spec) {
        undo.check(mount_one(spec, mount))?;
    }
    undo.commit();
    Ok(())
}

fn mount_one(spec: &CellSpec, mount: &CellMount) -> Result<(), String> {
    let target = spec.root.join(mount.path);
    // mount(8) follows symlinks: a base whose /dev or /proc pointed
    // elsewhere would get it mounted over a host directory. Every
    // directory on the way is checked (dev/fd lies in the devfs just
    // mounted, which the pod cannot change before it starts).
    let mut at = spec.root.clone();
    for part in Path::new(mount.path).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| format!("creating {}: {e}", at.display()))?
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    tool::run("mount", &mount_args(&spec.root, mount)).map_err(|e| {
        if mount.fstype.starts_with("lin") {
            format!(
                "{e} (the pod's base holds Linux programs: load the Linux ABI with \
                 `kldload linux64`, or `sysrc linux_enable=YES`)"
            )
        } else {
            e.to_string()
        }
    })?;
    if mount.fstype == "devfs" && spec.devfs_ruleset != 0 {
        for args in super::super::jail_params::devfs_ruleset_args(&target, spec.devfs_ruleset) {
            tool::run("devfs", &args).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Unmounts everything a cell may have mounted in `root`, inner mounts
/// first; what is not mounted is fine.
pub(super) fn unmount_cell(root: &Path) -> Result<(), JailError> {
    unmount_order().try_for_each(|m| unmount_stack(root, m.path))
}

/// Unmounts every file system stacked at `root`/`relative`.
fn unmount_stack(root: &Path, relative: &str) -> Result<(), JailError> {
    let path = root.join(relative);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = POLL;
    loop {
        if !real_dirs_below(root, relative) {
            return Ok(());
        }
        // Processes killed by jail_remove may still hold devices open for a
        // moment; after the deadline, force.
        let flags = if Instant::now() < deadline {
            MntFlags::empty()
        } else {
            MntFlags::MNT_FORCE
        };
        match unmount(&path, flags) {
            Ok(()) => continue, // another one may be stacked below
            // Not a mount point (any more): done.
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) if !flags.contains(MntFlags::MNT_FORCE) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(JailError::Sys {
                    what: format!("unmounting {}", path.display()),
                    source: io::Error::from(e),
                })
            }
        }
    }
}
