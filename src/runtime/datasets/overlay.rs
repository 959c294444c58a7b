//! Overlay clones for the `dir` driver on Linux: a clone of a sealed tree
//! is an overlayfs mount with the sealed tree as its lower layer and its
//! own upper and work directories beside it (`NAME.overlay/`), instead of
//! a full copy. Like a ZFS clone it costs nothing up front, whatever the
//! base's size, and a pod's first write of a file copies only that file
//! up; its files share the base's page cache, so a program in a fresh pod
//! starts as fast as on the host. (A 52 MB qemu base copies in about
//! 140 ms here; its overlay mounts in about 1 ms.)
//!
//! A sealed tree is never written again, which overlayfs requires of its
//! lower layers. Mounts do not survive a reboot: the layers record the boot
//! they were mounted in (`NAME.overlay/boot`), and whenever the driver
//! opens, `remount` mounts again, under a lock, each clone mounted in an
//! earlier boot. Within one boot nothing is mounted twice: a clone being
//! made is already of this boot, and many processes open the driver at once.
//! Where overlayfs cannot mount (no kernel support, a root path that its
//! options cannot spell), the clone is a copy as before.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The upper and work directories of clone `path` (`ROOT/pods/ID`).
pub(super) fn layers_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".overlay");
    PathBuf::from(name)
}

pub(super) fn is_overlay(path: &Path) -> bool {
    layers_of(path).is_dir()
}

/// overlayfs's options: `,` and `:` separate them and layers, `\` escapes;
/// /proc/self/mountinfo escapes white space (`is_mounted` reads it plain).
fn spellable(paths: &[&Path]) -> bool {
    paths.iter().all(|p| {
        p.to_str()
            .is_some_and(|s| !s.contains([',', ':', '\\', ' ', '\t', '\n']))
    })
}

/// Makes the layers of a clone of `lower` at `path` and mounts it.
/// `Ok(false)`: overlayfs cannot do it here, and nothing was left behind.
pub(super) fn clone(lower: &Path, path: &Path) -> std::io::Result<bool> {
    let layers = layers_of(path);
    if !spellable(&[lower, &layers]) {
        return Ok(false);
    }
    let mut staging = layers.as_os_str().to_owned();
    staging.push(".partial");
    let staging = PathBuf::from(staging);
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(staging.join("upper"))?;
    fs::create_dir(staging.join("work"))?;
    // The clone's root looks like the origin's (its mode and owner).
    let meta = fs::metadata(lower)?;
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        fs::set_permissions(
            staging.join("upper"),
            fs::Permissions::from_mode(meta.mode() & 0o7777),
        )?;
        std::os::unix::fs::chown(staging.join("upper"), Some(meta.uid()), Some(meta.gid()))?;
    }
    fs::write(staging.join("boot"), this_boot()?)?;
    fs::rename(&staging, &layers)?;
    let made = fs::create_dir(path).and_then(|_| mount_layers(lower, path));
    match made {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_dir(path);
            let _ = fs::remove_dir_all(&layers);
            match e.raw_os_error() {
                // No overlayfs, or not on this file system: copy instead.
                Some(libc::ENODEV | libc::EINVAL | libc::EPERM | libc::ENOTSUP) => Ok(false),
                _ => Err(e),
            }
        }
    }
}

fn mount_layers(lower: &Path, path: &Path) -> std::io::Result<()> {
    let layers = layers_of(path);
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        layers.join("upper").display(),
        layers.join("work").display()
    );
    mount(
        Some("overlay"),
        path,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(std::io::Error::from)
}

/// Unmounts clone `path` (detached if something still has it open: it is
/// being destroyed) and removes its layers. The mountpoint stays.
pub(super) fn remove(path: &Path) -> std::io::Result<()> {
    // Every mount there (an operator's stacked one too), a bounded number.
    for _ in 0..8 {
        if !is_mounted(path) {
            break;
        }
        if let Err(e) = umount2(path, MntFlags::empty()) {
            if e != nix::errno::Errno::EBUSY {
                return Err(e.into());
            }
            umount2(path, MntFlags::MNT_DETACH)?;
        }
    }
    match fs::remove_dir_all(layers_of(path)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    // Field 5 is the mount point, with spaces and the like octal-escaped;
    // overlay clone paths have none (`spellable`).
    info.lines()
        .any(|line| line.split(' ').nth(4) == Some(wanted.as_ref()))
}

/// This boot's id: a reboot changes it.
fn this_boot() -> std::io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// Mounts clone `path` again if its layers were mounted in an earlier boot.
fn remount_one(path: &Path, lower: &Path, boot: &str) -> std::io::Result<()> {
    let layers = layers_of(path);
    let stamp = layers.join("boot");
    if fs::read_to_string(&stamp).is_ok_and(|b| b == boot) {
        return Ok(());
    }
    // Two processes opening the driver after a reboot: one mounts.
    let dir = fs::File::open(&layers)?;
    nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
        .and_then(|_lock| {
            if fs::read_to_string(&stamp).is_ok_and(|b| b == boot) {
                return Ok(());
            }
            if !is_mounted(path) {
                mount_layers(lower, path)?;
            }
            fs::write(&stamp, boot)
        })
}

/// Mounts again the overlay clones under `root`'s children whose mounts a
/// reboot took; `origin_of` names each one's lower tree.
pub(super) fn remount(root: &Path, origin_of: impl Fn(&Path) -> Option<PathBuf>) {
    let Ok(boot) = this_boot() else {
        return;
    };
    for child in ["bases", "pods"] {
        let Ok(entries) = fs::read_dir(root.join(child)) else {
            continue;
        };
        // Bases first (a sealed clone may be the lower of another clone),
        // then in name order.
        let mut layers: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "overlay"))
            .collect();
        layers.sort();
        for layer in layers {
            let path = layer.with_extension("");
            if !path.is_dir() {
                continue;
            }
            let Some(lower) = origin_of(&path) else {
                continue;
            };
            if let Err(e) = remount_one(&path, &lower, &boot) {
                tracing::error!("mounting the overlay clone {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sit_beside_the_clone() {
        assert_eq!(
            layers_of(Path::new("/var/jetpack/pods/abc")),
            PathBuf::from("/var/jetpack/pods/abc.overlay")
        );
    }

    #[test]
    fn paths_that_overlay_options_cannot_spell_are_copied_instead() {
        assert!(spellable(&[Path::new("/a/b"), Path::new("/c-d/e_f.g")]));
        for bad in ["/a,b", "/a:b", "/a\\b", "/a b"] {
            assert!(!spellable(&[Path::new("/ok"), Path::new(bad)]), "{bad}");
        }
    }
}
