//! The file systems mounted in a cell's root: devfs with its ruleset and,
//! for a root of Linux programs, the Linux ABI's (`cell_mounts` says which),
//! and the pod's volumes by nullfs, never through a symlink; and their
//! removal, inner mounts first. A volume's mount is checked after it is
//! made (mount_nullfs takes paths): the directory opened again without
//! following must be that nullfs mount of that source. Removal finds the
//! cell's mounts in the kernel's table and takes each off by its file
//! system id, so a path a pod changed meanwhile is never followed.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{unmount, MntFlags};

use crate::runtime::jails::jail_params::{
    cell_mounts, mount_args, real_dirs_below, unmount_order, CellMount,
};
use crate::runtime::jails::volume_mounts::{
    below_deepest_first, nullfs_args, open_host_dir, open_pod_dir, Bind,
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
    for bind in &spec.volumes {
        undo.check(mount_volume(&spec.root, bind))?;
    }
    undo.commit();
    Ok(())
}

/// Mounts one volume by nullfs on its pod directory (made, never through
/// a symlink), then checks what was mounted.
fn mount_volume(root: &Path, bind: &Bind) -> Result<(), String> {
    drop(open_host_dir(&bind.source)?);
    let target = open_pod_dir(root, &bind.target)?;
    let on = root.join(bind.target.trim_start_matches('/'));
    tool::run("mount_nullfs", &nullfs_args(bind, &on))
        .map_err(|e| format!("mounting volume {}: {e}", bind.target))?;
    let mounted = target.reopen()?;
    let fs = fs_of(&mounted).map_err(|e| format!("volume {}: {e}", bind.target))?;
    let expected = fs.fstype == "nullfs"
        && fs.from == bind.source.as_os_str().as_encoded_bytes()
        && fs.on == on.as_os_str().as_encoded_bytes();
    if !expected {
        let _ = unmount_fsid(fs.fsid, MntFlags::MNT_FORCE);
        return Err(format!(
            "volume {}: the mount found on {} is not the nullfs of {}; taken off",
            bind.target,
            on.display(),
            bind.source.display()
        ));
    }
    Ok(())
}

/// What the kernel says of the file system an open directory is on.
struct MountedFs {
    fstype: String,
    from: Vec<u8>,
    on: Vec<u8>,
    fsid: [i32; 2],
}

fn c_bytes(field: &[libc::c_char]) -> Vec<u8> {
    field
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect()
}

fn mounted_fs(s: &libc::statfs) -> MountedFs {
    // SAFETY: fsid_t is two i32 (repr(C)); its field is private in libc.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(s.f_fsid) };
    MountedFs {
        fstype: String::from_utf8_lossy(&c_bytes(&s.f_fstypename)).into_owned(),
        from: c_bytes(&s.f_mntfromname),
        on: c_bytes(&s.f_mntonname),
        fsid,
    }
}

fn fs_of(fd: &std::os::fd::OwnedFd) -> Result<MountedFs, String> {
    use std::os::fd::AsRawFd;
    let mut s = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: fstatfs fills the buffer it is given for an open descriptor.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), s.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error().to_string());
    }
    // SAFETY: fstatfs succeeded, so the struct is initialised.
    Ok(mounted_fs(unsafe { &s.assume_init() }))
}

/// The kernel's table of mounts: every mount point with its file system id.
fn mount_table() -> Result<Vec<(std::path::PathBuf, [i32; 2])>, JailError> {
    let sys = |what: &str| JailError::Sys {
        what: what.to_string(),
        source: io::Error::last_os_error(),
    };
    // SAFETY: a null buffer asks only for the count.
    let n = unsafe { libc::getfsstat(std::ptr::null_mut(), 0, libc::MNT_NOWAIT) };
    if n < 0 {
        return Err(sys("counting mounts"));
    }
    // Room for mounts made between the two calls.
    let room = n as usize + 16;
    let mut buf: Vec<libc::statfs> = Vec::with_capacity(room);
    let bytes = (room * std::mem::size_of::<libc::statfs>()) as libc::c_long;
    // SAFETY: the buffer holds `room` structs, and its size in bytes is given.
    let got = unsafe { libc::getfsstat(buf.as_mut_ptr(), bytes, libc::MNT_NOWAIT) };
    if got < 0 {
        return Err(sys("listing mounts"));
    }
    // SAFETY: getfsstat initialised `got` structs.
    unsafe { buf.set_len(got as usize) };
    use std::os::unix::ffi::OsStrExt;
    Ok(buf
        .iter()
        .map(mounted_fs)
        .map(|m| {
            let on = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&m.on));
            (on, m.fsid)
        })
        .collect())
}

/// Unmounts a file system by its id (MNT_BYFSID): no path is looked up.
fn unmount_fsid(fsid: [i32; 2], flags: MntFlags) -> Result<(), Errno> {
    let name = std::ffi::CString::new(format!("FSID:{}:{}", fsid[0], fsid[1]))
        .map_err(|_| Errno::EINVAL)?;
    // SAFETY: a NUL-terminated string; unmount(2) reads it only.
    let r = unsafe { libc::unmount(name.as_ptr(), flags.bits() | libc::MNT_BYFSID) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Takes off every mount below `root` (volumes, and whatever else a cell
/// left), deepest first, by file system id; busy ones are retried, then
/// forced.
fn unmount_below(root: &Path) -> Result<(), JailError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = POLL;
    loop {
        let below = below_deepest_first(root, mount_table()?);
        let Some((on, fsid)) = below.into_iter().next() else {
            return Ok(());
        };
        let flags = if Instant::now() < deadline {
            MntFlags::empty()
        } else {
            MntFlags::MNT_FORCE
        };
        match unmount_fsid(fsid, flags) {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::EINVAL) => {}
            Err(Errno::EBUSY) if !flags.contains(MntFlags::MNT_FORCE) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(JailError::Sys {
                    what: format!("unmounting {}", on.display()),
                    source: io::Error::from(e),
                })
            }
        }
    }
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
    unmount_below(root)?;
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
