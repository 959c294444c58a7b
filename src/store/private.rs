//! jetpack's own files are private to the user it runs as (root): the
//! state database holds uplink tokens, blobs are users' images, logs carry
//! build output. Directories are 0700 and files 0600, made so when they
//! are created (a umask of 077 for the process, and explicit modes, which
//! also hold where the umask is not ours) and tightened at start when an
//! older jetpack, a restore or an operator left them looser.
//!
//! Pods' root file systems are not jetpack's: their modes are their
//! archive's, and nothing here walks into them.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of jetpack's own directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of jetpack's own files.
pub const FILE_MODE: u32 = 0o600;

/// Sets the process's umask to 077, so that whatever this process and the
/// tools it runs create (SQLite's WAL and SHM files, staging files, logs)
/// is its user's only. Processes started in pods get their usual 022 back
/// (`runtime`), and pod file systems keep their archive's modes.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Makes `dir` and its missing parents with mode 0700 (what exists is
/// left as it is: the parents may not be jetpack's).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Options to open a file of jetpack's own: created 0600.
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates `path` empty with mode 0600 unless it exists (before a library
/// that creates it with its own idea of a mode: SQLite's is 0644).
pub fn precreate(path: &Path) -> io::Result<()> {
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A secret kept in a file (the database password): refused when anyone
/// but its owner may read it, as ssh refuses a loose key. The one line
/// it holds, without its line end.
pub fn read_secret(path: &Path) -> io::Result<String> {
    let file = fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("mode {:o}: others may read it; chmod 600 it", mode & 0o777),
        ));
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, 4096), &mut text)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// How far `tighten` goes below a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The path alone.
    Itself,
    /// The path and, if it is a directory, the files directly in it, but
    /// no directory below (a datasets folder: its subdirectories are pods'
    /// root file systems, its files jetpack's markers).
    Files,
    /// Everything below it.
    Tree,
}

/// Takes group and other permissions off `path` (directories to 0700,
/// files to 0600) as far as `depth` says; returns how many paths changed.
/// Symbolic links are neither changed nor followed, and a missing path is
/// no error. Sockets, devices and pipes are left alone.
pub fn tighten(path: &Path, depth: Depth) -> io::Result<usize> {
    let mut changed = 0;
    let mut pending = vec![(path.to_path_buf(), true)];
    while let Some((path, top)) = pending.pop() {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        let target = if kind.is_dir() {
            DIR_MODE
        } else if kind.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            // lstat said it is no symlink; only root writes here, so it
            // cannot become one in between.
            fs::set_permissions(&path, fs::Permissions::from_mode(target))?;
            changed += 1;
        }
        let descend = kind.is_dir()
            && match depth {
                Depth::Itself => false,
                Depth::Files => top,
                Depth::Tree => true,
            };
        if descend {
            for entry in fs::read_dir(&path)? {
                let entry = entry?;
                let is_dir = entry.file_type()?.is_dir();
                if depth == Depth::Files && is_dir {
                    continue;
                }
                pending.push((entry.path(), false));
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn tighten_fixes_modes_without_following_links_or_entering_pods() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        fs::create_dir_all(root.join("blobs/sha256/ab")).unwrap();
        fs::write(root.join("blobs/sha256/ab/blob"), b"x").unwrap();
        set(&root.join("blobs/sha256/ab/blob"), 0o644);
        for d in ["blobs", "blobs/sha256", "blobs/sha256/ab"] {
            set(&root.join(d), 0o755);
        }
        fs::create_dir_all(root.join("pods/p1/etc")).unwrap();
        set(&root.join("pods"), 0o755);
        set(&root.join("pods/p1"), 0o755);
        fs::write(root.join("pods/p1.origin"), b"b").unwrap();
        set(&root.join("pods/p1.origin"), 0o644);
        let outside = dir.path().join("outside");
        fs::write(&outside, b"o").unwrap();
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, root.join("blobs/link")).unwrap();

        assert_eq!(tighten(&root.join("blobs"), Depth::Tree).unwrap(), 4);
        assert_eq!(mode(&root.join("blobs/sha256")), 0o700);
        assert_eq!(mode(&root.join("blobs/sha256/ab/blob")), 0o600);
        assert_eq!(mode(&outside), 0o644, "a link is not followed");

        assert_eq!(tighten(&root.join("pods"), Depth::Files).unwrap(), 2);
        assert_eq!(mode(&root.join("pods")), 0o700);
        assert_eq!(mode(&root.join("pods/p1.origin")), 0o600);
        assert_eq!(
            mode(&root.join("pods/p1")),
            0o755,
            "a pod's root is the pod's"
        );

        assert_eq!(tighten(&root.join("nothing"), Depth::Tree).unwrap(), 0);
        assert_eq!(tighten(&root.join("blobs"), Depth::Tree).unwrap(), 0);
    }

    #[test]
    fn files_and_dirs_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("a/b");
        create_dir(&made).unwrap();
        assert_eq!(mode(&made) & 0o077, 0);
        let db = made.join("state.db");
        precreate(&db).unwrap();
        precreate(&db).unwrap();
        assert_eq!(mode(&db) & 0o077, 0);
    }
}
