//! The server's whole catalog as one file and back (`jetpack backup`,
//! `jetpack restore`), and the lock that keeps a restore away from a
//! running server (`DataDirLock`, which `jetpack serve` holds).
//!
//! A backup is a tar archive: `manifest.json` first (`Manifest`: format
//! version, when, and each member's path, size and sha256), then the
//! members: `state.db` (the SQLite store as `VACUUM INTO` copies it, so a
//! running server is not stopped nor disturbed: every table, so uplinks,
//! NaCls, snippets, images, builders' metadata, instances' records, jobs),
//! `blobs/sha256/..` (the content-addressed files the store names: image
//! binaries, uploads; a server sweeps the ones no image names at start)
//! and `users/htpasswd` (the API's users). Not included, on purpose: the
//! TLS certificates and keys (a host's own identity, named for it; a
//! restored host makes or keeps its own, and a backup file is not where a
//! private key should travel), and the datasets of bases and pods (move a
//! base with `base export`/`base import`; restored rows of bases or pods
//! whose datasets are not on the new host are the operator's to remove).
//!
//! A restore reads the whole archive into a staging folder under the
//! target's data.dir/tmp, checks every member against the manifest (sizes,
//! sha256, nothing missing, nothing more) before anything is put in place,
//! then renames: blobs, the users file, and last the database (the old one
//! kept beside it as `state.db.before-restore`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::private;

/// The format version this build writes and reads.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DB: &str = "state.db";
const USERS: &str = "users/htpasswd";
const BLOBS: &str = "blobs/sha256";
/// A manifest of a million blobs is still far below this.
const MAX_MANIFEST: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("copying the store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("jetpack is not initialised at {0}: nothing to back up")]
    NoStore(PathBuf),
    #[error("a jetpack server (or another restore) holds {0}: stop it first")]
    Locked(PathBuf),
    #[error("not a jetpack backup: {0}")]
    NotABackup(String),
    #[error("backup format version {0} is not known to this jetpack (it reads {FORMAT})")]
    Version(u32),
    #[error("the backup is damaged or incomplete: {0}; nothing was restored")]
    Damaged(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Unix seconds.
    pub created: i64,
    /// The jetpack version that wrote it.
    pub jetpack: String,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// An exclusive lock on a data dir, held while the value lives: `jetpack
/// serve` holds it, a restore takes it. flock(2): the kernel lets go when
/// the process ends, however it ends.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn take(data_dir: &Path) -> Result<DataDirLock, BackupError> {
        private::create_dir(data_dir)
            .map_err(io_err(format!("creating {}", data_dir.display())))?;
        let path = data_dir.join("serve.lock");
        let file = private::file_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        // A lock file an older run or a careless hand left open to others
        // is root's only again, as every file in the data dir.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(format!("tightening {}", path.display())))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                BackupError::Locked(data_dir.to_path_buf())
            } else {
                io_err(format!("locking {}", path.display()))(e)
            });
        }
        Ok(DataDirLock { _file: file })
    }
}

/// A staging folder removed however the work ends.
struct Staging(PathBuf);

impl Staging {
    fn new(data_dir: &Path, what: &str) -> Result<Staging, BackupError> {
        let dir = data_dir
            .join("tmp")
            .join(format!("{what}-{}", crate::names::PodId::random()));
        private::create_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: private leftovers under tmp, swept by the next run.
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sha256_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(io_err(format!("reading {}", path.display())))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_err(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(sha.finalize())))
}

/// Every file below `dir`, as paths relative to `base` with '/'.
fn files_below(
    dir: &Path,
    base: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), BackupError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(format!("reading {}", dir.display())))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(io_err(format!("reading {}", path.display())))?;
        if kind.is_dir() {
            files_below(&path, base, out)?;
        } else if kind.is_file() {
            if let Some(rel) = path.strip_prefix(base).ok().and_then(|r| r.to_str()) {
                out.push((rel.to_string(), path.clone()));
            }
        }
    }
    Ok(())
}

/// Writes a backup of the catalog under `data_dir` and the users file
/// `htpasswd` (if it exists) to `out`; returns its manifest.
pub fn backup(
    data_dir: &Path,
    htpasswd: &Path,
    out: &mut dyn Write,
) -> Result<Manifest, BackupError> {
    let db = data_dir.join(DB);
    if !db.is_file() {
        return Err(BackupError::NoStore(data_dir.to_path_buf()));
    }
    let staging = Staging::new(data_dir, "backup")?;
    let copy = staging.0.join(DB);
    // VACUUM INTO: a consistent copy from one read transaction, beside a
    // running server's writes (WAL), without its WAL or SHM.
    let conn = rusqlite::Connection::open(&db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let target = copy
        .to_str()
        .ok_or_else(|| BackupError::NotABackup(format!("{} is not UTF-8", copy.display())))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    drop(conn);

    let mut sources: Vec<(String, PathBuf)> = vec![(DB.to_string(), copy)];
    if htpasswd.is_file() {
        sources.push((USERS.to_string(), htpasswd.to_path_buf()));
    }
    let mut blobs = Vec::new();
    files_below(&data_dir.join(BLOBS), data_dir, &mut blobs)?;
    blobs.sort();
    sources.extend(blobs);

    let mut members = Vec::with_capacity(sources.len());
    for (path, source) in &sources {
        let (size, sha256) = sha256_file(source)?;
        members.push(Member {
            path: path.clone(),
            size,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        created: super::now(),
        jetpack: env!("CARGO_PKG_VERSION").to_string(),
        members,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| io_err("encoding the manifest")(io::Error::other(e)))?;
    let mut tar = tar::Builder::new(out);
    let what = "writing the backup";
    tar.append_data(&mut header(json.len() as u64), MANIFEST, json.as_slice())
        .map_err(io_err(what))?;
    for ((path, source), member) in sources.iter().zip(&manifest.members) {
        let file = File::open(source).map_err(io_err(format!("reading {}", source.display())))?;
        // Exactly the bytes hashed: a file that grew since is cut, one that
        // shrank fails the append.
        tar.append_data(&mut header(member.size), path, file.take(member.size))
            .map_err(io_err(format!("writing {path} to the backup")))?;
    }
    tar.into_inner()
        .and_then(|out| out.flush())
        .map_err(io_err(what))?;
    Ok(manifest)
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(super::now().max(0) as u64);
    h
}

/// Whether `path` is a member a backup may hold: the manifest, the store,
/// the users file, or a blob (plain relative parts only).
fn allowed_member(path: &str) -> bool {
    let plain = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    plain
        && (path == MANIFEST
            || path == DB
            || path == USERS
            || path
                .strip_prefix(BLOBS)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| {
                    !rest.is_empty()
                        && rest.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.')
                        })
                }))
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The database the restore replaced, kept beside it.
    pub replaced: Option<PathBuf>,
}

/// Restores a backup read from `input` into `data_dir` (and the users
/// file to `htpasswd`); refused while a server holds `data_dir`. Nothing
/// is put in place until every member is checked.
pub fn restore(
    data_dir: &Path,
    htpasswd: &Path,
    input: &mut dyn Read,
) -> Result<Restored, BackupError> {
    let _lock = DataDirLock::take(data_dir)?;
    let staging = Staging::new(data_dir, "restore")?;
    let damaged = |why: String| BackupError::Damaged(why);
    let mut archive = tar::Archive::new(input);
    let mut seen: Vec<(String, u64, String)> = Vec::new();
    let mut manifest_json: Option<Vec<u8>> = None;
    let entries = archive
        .entries()
        .map_err(|e| BackupError::NotABackup(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| damaged("a member's name is not UTF-8".into()))?;
        if entry.header().entry_type() != tar::EntryType::Regular || !allowed_member(&path) {
            return Err(BackupError::NotABackup(format!(
                "unexpected member {path:?}"
            )));
        }
        if path == MANIFEST {
            if entry.size() > MAX_MANIFEST {
                return Err(damaged("the manifest is too large".into()));
            }
            let mut json = Vec::new();
            entry
                .read_to_end(&mut json)
                .map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
            manifest_json = Some(json);
            continue;
        }
        if seen.iter().any(|(p, _, _)| *p == path) {
            return Err(damaged(format!("{path} appears twice")));
        }
        let target = staging.0.join(&path);
        if let Some(parent) = target.parent() {
            private::create_dir(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        let mut file = private::file_options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io_err(format!("creating {}", target.display())))?;
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| damaged(format!("{path}: {e}")))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            size += n as u64;
            file.write_all(&buf[..n])
                .map_err(io_err(format!("writing {}", target.display())))?;
        }
        if size != entry.size() {
            return Err(damaged(format!("{path} is cut short")));
        }
        file.sync_all()
            .map_err(io_err(format!("writing {}", target.display())))?;
        seen.push((path, size, hex::encode(sha.finalize())));
    }
    let json =
        manifest_json.ok_or_else(|| BackupError::NotABackup(format!("it has no {MANIFEST}")))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| BackupError::NotABackup(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Version(manifest.format));
    }
    // Every member as the manifest says, and nothing else.
    for m in &manifest.members {
        if !allowed_member(&m.path) || m.path == MANIFEST {
            return Err(BackupError::NotABackup(format!(
                "unexpected member {:?}",
                m.path
            )));
        }
        match seen.iter().find(|(p, _, _)| *p == m.path) {
            None => return Err(damaged(format!("{} is missing", m.path))),
            Some((_, size, _)) if *size != m.size => {
                return Err(damaged(format!(
                    "{} has {size} bytes, not {}",
                    m.path, m.size
                )))
            }
            Some((_, _, sha)) if !sha.eq_ignore_ascii_case(&m.sha256) => {
                return Err(damaged(format!("{} does not match its sha256", m.path)))
            }
            Some(_) => {}
        }
    }
    if let Some((extra, _, _)) = seen
        .iter()
        .find(|(p, _, _)| !manifest.members.iter().any(|m| m.path == *p))
    {
        return Err(damaged(format!("{extra} is not in the manifest")));
    }
    if !seen.iter().any(|(p, _, _)| p == DB) {
        return Err(damaged(format!("{DB} is missing")));
    }
    let replaced = put_in_place(data_dir, htpasswd, &staging.0, &seen)?;
    Ok(Restored { manifest, replaced })
}

/// Renames the checked members into place: blobs (content-addressed, so
/// an existing one is the same file), the users file, then the database.
fn put_in_place(
    data_dir: &Path,
    htpasswd: &Path,
    staged: &Path,
    members: &[(String, u64, String)],
) -> Result<Option<PathBuf>, BackupError> {
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to).map_err(io_err(format!(
            "moving {} to {}",
            from.display(),
            to.display()
        )))
    };
    for (path, _, _) in members.iter().filter(|(p, _, _)| p.starts_with(BLOBS)) {
        let to = data_dir.join(path);
        if let Some(parent) = to.parent() {
            private::create_dir(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        rename(&staged.join(path), &to)?;
    }
    if members.iter().any(|(p, _, _)| p == USERS) {
        // Another file system, maybe: copied beside the target, then renamed.
        if let Some(parent) = htpasswd.parent() {
            private::create_dir(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        let mut beside = htpasswd.as_os_str().to_owned();
        beside.push(".restoring");
        let beside = PathBuf::from(beside);
        let copied = fs::copy(staged.join(USERS), &beside)
            .map_err(io_err(format!("writing {}", beside.display())))
            .and_then(|_| rename(&beside, htpasswd));
        if copied.is_err() {
            // Best effort: the error says what failed.
            let _ = fs::remove_file(&beside);
        }
        copied?;
    }
    // The old database goes aside with its WAL and SHM (a WAL left beside
    // the new database would be replayed into it).
    let db = data_dir.join(DB);
    let mut replaced = None;
    if db.exists() {
        let aside = data_dir.join(format!("{DB}.before-restore"));
        for suffix in ["-wal", "-shm", ""] {
            let from = data_dir.join(format!("{DB}{suffix}"));
            let to = data_dir.join(format!("{DB}.before-restore{suffix}"));
            match fs::symlink_metadata(&from) {
                Ok(_) => rename(&from, &to)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // No stale one of ours beside the kept database either.
                    let _ = fs::remove_file(&to);
                }
                Err(e) => return Err(io_err(format!("reading {}", from.display()))(e)),
            }
        }
        replaced = Some(aside);
    }
    rename(&staged.join(DB), &db)?;
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_members_are_allowed() {
        for ok in [
            "manifest.json",
            "state.db",
            "users/htpasswd",
            "blobs/sha256/ab/abcdef",
        ] {
            assert!(allowed_member(ok), "{ok}");
        }
        for bad in [
            "../state.db",
            "/state.db",
            "blobs/sha256/../../etc/passwd",
            "blobs/sha256/",
            "blobs/sha2566/x",
            "users/other",
            "state.db/x",
            "blobs/sha256/a b",
        ] {
            assert!(!allowed_member(bad), "{bad}");
        }
    }

    #[test]
    fn a_second_lock_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::take(dir.path()).unwrap();
        // flock is per open file description: a second open in this
        // process conflicts as another process's would.
        assert!(matches!(
            DataDirLock::take(dir.path()),
            Err(BackupError::Locked(_))
        ));
        drop(first);
        DataDirLock::take(dir.path()).unwrap();
    }
}
