//! A pod's volumes as the jails drivers mount them: what a bind is
//! (`Bind`), and the walks that open both of its ends without following a
//! symlink: the host directory from `/`, the pod directory from the pod's
//! root, made on the way where missing. A driver mounts between the two
//! descriptors (Linux: through /proc/self/fd, so nothing is looked up by
//! path again) or re-checks after mounting by path (FreeBSD's nullfs).
//! A symlink planted in either path is refused, never followed: it could
//! point anywhere on the host.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};

/// A volume of a cell: the host directory `source` (absolute, canonical)
/// seen at `target` (absolute, in the pod), read-only or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

fn flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: a descriptor openat just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The plain names of an absolute path, refusing `..` (a pod path must
/// not climb; a canonical host path has none).
fn names(path: &Path) -> Result<Vec<&std::ffi::OsStr>, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(format!("{} climbs with ..", path.display())),
        })
        .collect()
}

/// Opens `name` in `dir`, a directory and never a symlink; with `create`,
/// makes it (0755) when missing.
fn step(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    create: bool,
    whole: &str,
) -> Result<OwnedFd, String> {
    let open = || openat(Some(dir.as_raw_fd()), name, flags(), Mode::empty());
    match open() {
        Ok(fd) => Ok(own(fd)),
        Err(Errno::ENOENT) if create => {
            match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(format!("{whole}: making {}: {e}", name.to_string_lossy())),
            }
            let fd = own(open().map_err(|e| format!("{whole}: {e}"))?);
            // mkdirat obeys the umask (jetpack's is 077): the pod's
            // users must be able to enter the directory.
            fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o755))
                .map_err(|e| format!("{whole}: {e}"))?;
            Ok(fd)
        }
        // O_NOFOLLOW on a symlink: ELOOP (or ENOTDIR with O_DIRECTORY on
        // some systems); either way, not followed.
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) | Err(Errno::EMLINK) => Err(format!(
            "{whole}: {} is a symlink or not a directory; volumes are never mounted through a symlink",
            name.to_string_lossy()
        )),
        Err(e) => Err(format!("{whole}: {e}")),
    }
}

/// Opens the absolute host directory `path` from `/`, every component
/// a real directory.
pub fn open_host_dir(path: &Path) -> Result<OwnedFd, String> {
    let whole = format!("host path {}", path.display());
    let mut at =
        own(openat(None, "/", flags(), Mode::empty()).map_err(|e| format!("opening /: {e}"))?);
    for name in names(path).map_err(|e| format!("{whole}: {e}"))? {
        at = step(&at, name, false, &whole)?;
    }
    Ok(at)
}

/// Opens the pod directory `target` under `root` (which jetpack made and
/// trusts), making the missing directories; the descriptor of its parent
/// and its last name come too, to find the mount on it again.
pub fn open_pod_dir(root: &Path, target: &str) -> Result<PodDir, String> {
    let whole = format!("pod path {target}");
    let names = names(Path::new(target)).map_err(|e| format!("{whole}: {e}"))?;
    let Some((last, parents)) = names.split_last() else {
        return Err(format!("{whole}: the pod's root itself cannot be a volume"));
    };
    let mut at = own(openat(None, root, flags(), Mode::empty())
        .map_err(|e| format!("opening {}: {e}", root.display()))?);
    for name in parents {
        at = step(&at, name, true, &whole)?;
    }
    let dir = step(&at, last, true, &whole)?;
    Ok(PodDir {
        parent: at,
        name: last.to_os_string(),
        dir,
    })
}

/// A pod directory opened by `open_pod_dir`.
pub struct PodDir {
    pub parent: OwnedFd,
    pub name: std::ffi::OsString,
    pub dir: OwnedFd,
}

impl PodDir {
    /// Opens the directory again by its name in its parent: after a mount
    /// on it, this is the mounted directory (`dir` stays the one below).
    pub fn reopen(&self) -> Result<OwnedFd, String> {
        step(&self.parent, &self.name, false, "the mounted volume")
    }
}

/// mount_nullfs(8)'s arguments for a volume mounted on `on` (the pod
/// directory's path on the host) (FreeBSD).
pub fn nullfs_args(bind: &Bind, on: &Path) -> Vec<String> {
    let mut args = Vec::with_capacity(4);
    if bind.read_only {
        args.extend(["-o".to_string(), "ro".to_string()]);
    }
    args.push(bind.source.display().to_string());
    args.push(on.display().to_string());
    args
}

/// The mounts of `mounts` (mount point, anything) strictly below `root`,
/// deepest first: the order they can be taken off in (FreeBSD, where a
/// cell's mounts are found again from the kernel's table).
pub fn below_deepest_first<T>(root: &Path, mounts: Vec<(PathBuf, T)>) -> Vec<(PathBuf, T)> {
    let mut below: Vec<(PathBuf, T)> = mounts
        .into_iter()
        .filter(|(on, _)| on != root && on.starts_with(root))
        .collect();
    below.sort_by_key(|(on, _)| std::cmp::Reverse(on.components().count()));
    below
}

/// The path through which the kernel reaches an open descriptor (Linux).
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_dirs_are_made_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let made = open_pod_dir(root, "/srv/data").unwrap();
        drop(made);
        let mode = std::fs::metadata(root.join("srv/data")).unwrap();
        assert!(mode.is_dir());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o755
        );
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let err = open_pod_dir(root, "/link").err().unwrap();
        assert!(err.contains("symlink"), "{err}");
        let err = open_pod_dir(root, "/link/x").err().unwrap();
        assert!(err.contains("symlink"), "{err}");
        assert!(open_pod_dir(root, "/a/../b").is_err());
        assert!(open_pod_dir(root, "/").is_err());
        assert!(open_pod_dir(root, "rel").is_err());
    }

    #[test]
    fn nullfs_arguments_and_the_unmount_order() {
        let bind = Bind {
            source: PathBuf::from("/srv/data"),
            target: "/data".into(),
            read_only: true,
        };
        let on = Path::new("/pods/p1/data");
        assert_eq!(
            nullfs_args(&bind, on),
            ["-o", "ro", "/srv/data", "/pods/p1/data"]
        );
        let rw = Bind {
            read_only: false,
            ..bind
        };
        assert_eq!(nullfs_args(&rw, on), ["/srv/data", "/pods/p1/data"]);
        let root = Path::new("/pods/p1");
        let table = vec![
            (PathBuf::from("/"), 0),
            (PathBuf::from("/pods/p1"), 1),
            (PathBuf::from("/pods/p1/dev"), 2),
            (PathBuf::from("/pods/p1/srv/a/b"), 3),
            (PathBuf::from("/pods/p10/dev"), 4),
            (PathBuf::from("/pods/p1/srv/a"), 5),
        ];
        let order: Vec<i32> = below_deepest_first(root, table)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(order, [3, 5, 2]);
    }

    #[test]
    fn host_dirs_are_opened_without_following() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        assert!(open_host_dir(&real.join("d")).is_ok());
        std::os::unix::fs::symlink(real.join("d"), real.join("l")).unwrap();
        assert!(open_host_dir(&real.join("l")).is_err());
        assert!(open_host_dir(&real.join("missing")).is_err());
        std::fs::write(real.join("f"), b"").unwrap();
        assert!(open_host_dir(&real.join("f")).is_err());
    }
}
