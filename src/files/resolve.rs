//! From a route to what answers it: a file opened for reading, a
//! directory's listing, or a redirect. Runs on a blocking thread.
//!
//! Symlinks: an OS image tree is an extracted ISO, whose symlinks may
//! point anywhere. The requested path is resolved with `canonicalize`
//! and must stay under the tree's canonical root, else 403; the canonical
//! path is then opened with O_NOFOLLOW. Not an openat walk with
//! O_NOFOLLOW per component: that refuses every symlink, and ISOs use
//! symlinks inside themselves that installers follow. The check and the
//! open are two steps, which is safe here because trees are sealed
//! (read-only snapshots): nothing can swap a component in between.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::path::Route;
use super::{FilesError, StoredFile, Trees};

/// A file to send.
pub struct FileTarget {
    pub file: File,
    pub size: u64,
    pub modified: SystemTime,
    /// Quoted, strong.
    pub etag: String,
    /// The file's name: its Content-Type comes from its extension.
    pub name: String,
    /// A store's blob: written once and only ever replaced by a rename or
    /// unlinked, never truncated in place, so its bytes can be sent from
    /// a mapping (a file cut short under a mapping would fault the server).
    pub written_once: bool,
}

/// One line of a listing.
pub struct Entry {
    pub name: String,
    pub dir: bool,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub sha256: Option<String>,
}

/// A directory as listed: its path as asked (decoded) and its entries,
/// sorted by name.
pub struct Listing {
    pub path: String,
    pub entries: Vec<Entry>,
}

pub enum Found {
    File(FileTarget),
    Dir(Listing),
    Redirect(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FilesError {
    let what = what.into();
    move |source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => FilesError::NotFound,
        _ => FilesError::Io { what, source },
    }
}

fn dir_entry(name: &str) -> Entry {
    Entry {
        name: name.to_string(),
        dir: true,
        size: 0,
        modified: None,
        sha256: None,
    }
}

fn stored_entry(f: StoredFile) -> Entry {
    Entry {
        name: f.name,
        dir: false,
        size: f.size,
        modified: Some(f.modified),
        sha256: Some(f.sha256),
    }
}

pub fn find(trees: &dyn Trees, route: &Route) -> Result<Found, FilesError> {
    match route {
        Route::Root => {
            let mut entries = vec![dir_entry("isos"), dir_entry("microkernels")];
            let mut names: Vec<String> = trees.os_images().into_iter().map(|(n, _)| n).collect();
            names.sort();
            names.dedup();
            entries.extend(names.iter().map(|n| dir_entry(n)));
            Ok(Found::Dir(Listing {
                path: "/".into(),
                entries,
            }))
        }
        Route::StoreList(kind) => {
            let mut entries: Vec<Entry> = trees
                .stored_list(*kind)
                .into_iter()
                .map(stored_entry)
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Found::Dir(Listing {
                path: format!("/{}/", super::folder(*kind)),
                entries,
            }))
        }
        Route::Stored(kind, name) => stored(trees.stored(*kind, name)),
        Route::Image(id) => stored(trees.image(id)),
        Route::ImageByTag(tag) => stored(trees.image_by_tag(tag)),
        Route::OsVersions { name, dir } => {
            let mut entries: Vec<Entry> = trees
                .os_images()
                .into_iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| dir_entry(&v))
                .collect();
            if entries.is_empty() {
                return Err(FilesError::NotFound);
            }
            if !dir {
                return Ok(Found::Redirect(format!(
                    "/{}/",
                    super::listing::encode_segment(name)
                )));
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Found::Dir(Listing {
                path: format!("/{name}/"),
                entries,
            }))
        }
        Route::OsTree {
            name,
            version,
            rest,
            dir,
        } => {
            let root = trees.os_image(name, version).ok_or(FilesError::NotFound)?;
            let mut found = in_tree(&root, name, version, rest, *dir)?;
            if let Found::File(f) = &mut found {
                f.written_once = trees.os_images_read_only();
            }
            Ok(found)
        }
        Route::AddSlash(to) => Ok(Found::Redirect(to.clone())),
    }
}

/// A stored file: opened, and checked to be what the store says.
fn stored(file: Option<StoredFile>) -> Result<Found, FilesError> {
    let f = file.ok_or(FilesError::NotFound)?;
    let opened = File::open(&f.path).map_err(io_err(format!("opening {}", f.path.display())))?;
    let meta = opened
        .metadata()
        .map_err(io_err(format!("reading {}", f.path.display())))?;
    if !meta.is_file() {
        return Err(FilesError::NotFound);
    }
    Ok(Found::File(FileTarget {
        file: opened,
        size: meta.len(),
        modified: f.modified,
        etag: format!("\"{}\"", f.sha256),
        name: f.name,
        written_once: true,
    }))
}

/// A strong validator for a file of a tree: its inode, size and
/// modification time change together with its bytes in practice (trees
/// are sealed, so they do not change at all).
fn tree_etag(meta: &Metadata) -> String {
    let nanos = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    format!("\"{:x}-{:x}-{:x}\"", meta.ino(), meta.len(), nanos)
}

fn in_tree(
    root: &Path,
    name: &str,
    version: &str,
    rest: &[String],
    dir: bool,
) -> Result<Found, FilesError> {
    let root = root
        .canonicalize()
        .map_err(io_err(format!("the tree of {name} {version}")))?;
    let mut asked = root.clone();
    asked.extend(rest);
    let real = asked.canonicalize().map_err(io_err(format!(
        "resolving {} in {name} {version}",
        rest.join("/")
    )))?;
    if !real.starts_with(&root) {
        tracing::debug!(
            "files: {name}/{version}/{} resolves outside its tree (to {}): refused",
            rest.join("/"),
            real.display()
        );
        return Err(FilesError::Outside);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&real)
        .map_err(io_err(format!("opening {}", real.display())))?;
    let meta = file
        .metadata()
        .map_err(io_err(format!("reading {}", real.display())))?;
    let shown = format!("/{name}/{version}/{}", join_dir(rest));
    if meta.is_dir() {
        if !dir {
            return Ok(Found::Redirect(encoded_dir(name, version, rest)));
        }
        return Ok(Found::Dir(Listing {
            path: shown,
            entries: list_dir(&real, &root)?,
        }));
    }
    if dir || !meta.is_file() {
        return Err(FilesError::NotFound);
    }
    Ok(Found::File(FileTarget {
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        etag: tree_etag(&meta),
        name: rest.last().cloned().unwrap_or_default(),
        file,
        // Unless its dataset is read-only even to root (the caller knows):
        // on the dir driver an operator may edit a tree by hand, and `cp`
        // over a file truncates it in place.
        written_once: false,
    }))
}

fn join_dir(rest: &[String]) -> String {
    rest.iter().map(|s| format!("{s}/")).collect()
}

/// The path of a folder with its final `/`, each segment re-encoded.
fn encoded_dir(name: &str, version: &str, rest: &[String]) -> String {
    let mut out = String::from("/");
    for s in [name, version]
        .into_iter()
        .chain(rest.iter().map(String::as_str))
    {
        out.push_str(&super::listing::encode_segment(s));
        out.push('/');
    }
    out
}

/// The entries of `dir`; a symlink is listed as what it points to, and
/// left out when that is outside `root` or missing.
fn list_dir(dir: &Path, root: &Path) -> Result<Vec<Entry>, FilesError> {
    let mut entries = Vec::new();
    let read = std::fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
    for entry in read {
        let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: cannot be asked for either
        };
        let path: PathBuf = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let meta = if kind.is_symlink() {
            match path.canonicalize() {
                Ok(real) if real.starts_with(root) => std::fs::metadata(&real),
                _ => continue,
            }
        } else {
            entry.metadata()
        };
        let Ok(meta) = meta else {
            continue;
        };
        if !meta.is_dir() && !meta.is_file() {
            continue;
        }
        entries.push(Entry {
            name,
            dir: meta.is_dir(),
            size: if meta.is_dir() { 0 } else { meta.len() },
            modified: meta.modified().ok(),
            sha256: None,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::super::StoreKind;
    use super::*;

    struct One(PathBuf, bool);

    impl Trees for One {
        fn os_image(&self, name: &str, version: &str) -> Option<PathBuf> {
            (name == "os" && version == "1").then(|| self.0.clone())
        }
        fn os_images_read_only(&self) -> bool {
            self.1
        }
        fn os_images(&self) -> Vec<(String, String)> {
            vec![("os".into(), "1".into())]
        }
        fn stored(&self, _: StoreKind, _: &str) -> Option<StoredFile> {
            None
        }
        fn stored_list(&self, _: StoreKind) -> Vec<StoredFile> {
            Vec::new()
        }
        fn image(&self, _: &str) -> Option<StoredFile> {
            None
        }
        fn image_by_tag(&self, _: &str) -> Option<StoredFile> {
            None
        }
    }

    fn tree(rest: &[&str], dir: bool) -> Route {
        Route::OsTree {
            name: "os".into(),
            version: "1".into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
            dir,
        }
    }

    #[test]
    fn symlinks_inside_work_and_outside_are_refused() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), b"a").unwrap();
        std::fs::write(top.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", root.join("inside")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("outside")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let trees = One(root.clone(), false);
        assert!(matches!(
            find(&trees, &tree(&["inside"], false)),
            Ok(Found::File(f)) if f.size == 1 && !f.written_once
        ));
        // Trees read-only even to root are sent from a mapping.
        assert!(matches!(
            find(&One(root, true), &tree(&["inside"], false)),
            Ok(Found::File(f)) if f.written_once
        ));
        for p in [&["outside"][..], &["etc", "passwd"], &["etc"]] {
            assert!(
                matches!(find(&trees, &tree(p, false)), Err(FilesError::Outside)),
                "{p:?}"
            );
        }
        let Ok(Found::Dir(list)) = find(&trees, &tree(&[], true)) else {
            panic!("no listing");
        };
        let names: Vec<&str> = list.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["inside", "sub"]);
        assert!(matches!(
            find(&trees, &tree(&["sub"], false)),
            Ok(Found::Redirect(to)) if to == "/os/1/sub/"
        ));
        assert!(matches!(
            find(&trees, &tree(&["sub", "a.txt"], true)),
            Err(FilesError::NotFound)
        ));
        assert!(matches!(
            find(&trees, &tree(&["missing"], false)),
            Err(FilesError::NotFound)
        ));
    }
}
