//! Root file system archives: fetching one (file or URL) into a staging file
//! while hashing it, recognising its compression (gzip, xz, zstd or none) by
//! its magic bytes, and unpacking it into a dataset.
//!
//! A URL a user gave is fetched under the SSRF policy (`fetch_policy`);
//! sources are named in errors with their credentials masked.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::fetch_policy::{self, redact_url, redact_urls, FetchPolicy};
use crate::store::private;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {source_name}: {error}")]
    Read {
        source_name: String,
        error: io::Error,
    },
    #[error("cannot fetch {url}: {why}")]
    Fetch { url: String, why: String },
    #[error("{0} is not a tar archive (plain, gzip, xz or zstd)")]
    UnknownFormat(String),
    #[error("{source_name} is corrupt or truncated: {why}")]
    Corrupt { source_name: String, why: String },
    #[error("{source_name}: sha256 is {actual}, expected {expected}")]
    Digest {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("no space left while unpacking {0}")]
    NoSpace(String),
    #[error("staging {path}: {error}")]
    Staging { path: PathBuf, error: io::Error },
    #[error("the import of {0} was cancelled")]
    Cancelled(String),
}

/// A fetched archive: a staging file (removed on drop) and its digest.
pub struct Staged {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// How a URL source is fetched.
#[derive(Clone, Copy)]
pub enum Urls<'a> {
    /// A URL a user gave (a base import): only addresses the policy allows,
    /// redirects checked one by one, one error for refused and unreachable.
    Checked(&'a Arc<FetchPolicy>),
    /// A URL jetpack.conf gave (a bob provider's): the operator's choice,
    /// fetched as it is, with the precise error.
    Trusted,
}

/// Copies `source` (a path or an http(s) URL) into a new file in
/// `staging_dir`, computing its sha256 on the way; `progress` gets the bytes
/// copied so far and may stop the copy (`Break`: the import is cancelled).
pub fn stage(
    source: &str,
    staging_dir: &Path,
    urls: Urls,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<Staged, ArchiveError> {
    let name = redact_url(source);
    let read_err = |error| ArchiveError::Read {
        source_name: name.clone(),
        error,
    };
    let input: Box<dyn Read> = if is_url(source) {
        open_url(source, &name, urls)?
    } else {
        let file = File::open(source).map_err(read_err)?;
        if file.metadata().map_err(read_err)?.is_dir() {
            return Err(read_err(io::Error::other("is a directory")));
        }
        Box::new(file)
    };
    stage_from(source, input, staging_dir, progress)
}

/// The body of `url` (`name` is it redacted).
fn open_url(url: &str, name: &str, urls: Urls) -> Result<Box<dyn Read>, ArchiveError> {
    let fetch_err = |why: String| ArchiveError::Fetch {
        url: name.to_string(),
        why,
    };
    let policy = match urls {
        Urls::Trusted => {
            let response = ureq::get(url)
                .call()
                .map_err(|e| fetch_err(redact_urls(&e.to_string()).into_owned()))?;
            return Ok(Box::new(response.into_body().into_reader()));
        }
        Urls::Checked(policy) => policy,
    };
    fetch_policy::open(url, policy).map_err(|failure| fetch_err(failure.why(name)))
}

/// Copies `input` (read from `source`, named so in errors, redacted) into
/// a new file in `staging_dir`, hashing it on the way.
pub fn stage_from(
    source: &str,
    mut input: Box<dyn Read>,
    staging_dir: &Path,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<Staged, ArchiveError> {
    let is_url = is_url(source);
    let source = &redact_url(source);
    let read_err = |error| ArchiveError::Read {
        source_name: source.to_string(),
        error,
    };
    private::create_dir(staging_dir).map_err(|error| ArchiveError::Staging {
        path: staging_dir.to_path_buf(),
        error,
    })?;
    let path = staging_dir.join(format!("import-{}", uuid::Uuid::new_v4().simple()));
    let staging_err = |error: io::Error| {
        if is_no_space(&error) {
            ArchiveError::NoSpace(source.to_string())
        } else {
            ArchiveError::Staging {
                path: path.clone(),
                error,
            }
        }
    };
    let mut out = private::file_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(staging_err)?;
    // From here on the guard removes the staging file on every error path.
    let mut staged = Staged {
        path: path.clone(),
        sha256: String::new(),
        size: 0,
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_url => {
                return Err(ArchiveError::Fetch {
                    url: source.to_string(),
                    why: format!("the transfer broke off: {}", redact_urls(&e.to_string())),
                })
            }
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(staging_err)?;
        staged.size += n as u64;
        if progress(staged.size).is_break() {
            return Err(ArchiveError::Cancelled(source.to_string()));
        }
    }
    out.sync_all().map_err(staging_err)?;
    staged.sha256 = hex::encode(hasher.finalize());
    Ok(staged)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// Recognises the compression of a tar archive from its first bytes.
pub fn detect(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Compression::None)
    } else {
        None
    }
}

/// Whether an error, or any error under it (tar wraps the file system's),
/// says the file system is full or over quota.
fn is_no_space(e: &io::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ) || matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = err.source();
    }
    false
}

/// Unpacks the staged archive into `target` (an empty directory). Paths
/// that would land outside `target` are refused by the tar reader.
pub fn unpack(staged: &Staged, source_name: &str, target: &Path) -> Result<(), ArchiveError> {
    unpack_as(staged, source_name, target, Entries::Plain)
}

/// Unpacks an OCI image layer over what earlier layers left in `target`:
/// its whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete what they name.
pub fn unpack_layer(staged: &Staged, source_name: &str, target: &Path) -> Result<(), ArchiveError> {
    unpack_as(staged, source_name, target, Entries::Layer)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entries {
    Plain,
    Layer,
}

fn unpack_as(
    staged: &Staged,
    source_name: &str,
    target: &Path,
    entries: Entries,
) -> Result<(), ArchiveError> {
    let source_name = &redact_url(source_name);
    let read_err = |error| ArchiveError::Read {
        source_name: source_name.to_string(),
        error,
    };
    let mut file = File::open(&staged.path).map_err(read_err)?;
    let mut head = [0u8; 512];
    let n = read_full(&mut file, &mut head).map_err(read_err)?;
    file.rewind().map_err(read_err)?;
    let compression =
        detect(&head[..n]).ok_or_else(|| ArchiveError::UnknownFormat(source_name.to_string()))?;
    let corrupt = |why: String| ArchiveError::Corrupt {
        source_name: source_name.to_string(),
        why,
    };
    let reader = BufReader::new(file);
    let result = match compression {
        Compression::None => untar(reader, target, entries),
        Compression::Gzip => untar(flate2::read::MultiGzDecoder::new(reader), target, entries),
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|e| corrupt(e.to_string()))?;
            untar(decoder, target, entries)
        }
        Compression::Xz => {
            // lzma-rs decodes from a reader into a writer; a pipe turns that
            // into the reader tar wants, with constant memory.
            let (pipe_reader, mut pipe_writer) = io::pipe().map_err(read_err)?;
            let decoder = std::thread::spawn(move || {
                let mut input = reader;
                lzma_rs::xz_decompress(&mut input, &mut pipe_writer).map_err(|e| e.to_string())
            });
            let unpacked = untar(pipe_reader, target, entries);
            let decoded = decoder
                .join()
                .unwrap_or_else(|_| Err("xz decoder panicked".into()));
            match (unpacked, decoded) {
                (Ok(()), Err(why)) => Err(io::Error::other(why)),
                (Err(e), Err(why))
                    if e.kind() == io::ErrorKind::BrokenPipe
                        || e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    Err(io::Error::other(why))
                }
                (unpacked, _) => unpacked,
            }
        }
    };
    result.map_err(|e| {
        if is_no_space(&e) {
            ArchiveError::NoSpace(source_name.to_string())
        } else {
            corrupt(e.to_string())
        }
    })
}

fn untar<R: Read>(reader: R, target: &Path, kind: Entries) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut entries = 0usize;
    let mut parents_made = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        entries += 1;
        let path = entry.path()?.into_owned();
        if kind == Entries::Layer && apply_whiteout(&path, target)? {
            continue;
        }
        make_parents(target, &path, &mut parents_made)?;
        entry.unpack_in(target)?;
    }
    if entries == 0 {
        return Err(io::Error::other("the archive holds no files"));
    }
    Ok(())
}

/// Makes the directories above `path` (an entry's, relative to `target`)
/// that the archive does not list, 0755 as tar(1) makes them. tar would
/// make them itself, but under the process's umask (077 in jetpack), and
/// a pod's file system must not depend on the server's umask. Only plain
/// components are followed and nothing through a symlink or a file: such
/// a path is left to tar, which refuses what leaves `target`. `made`
/// remembers the parents done.
fn make_parents(target: &Path, path: &Path, made: &mut HashSet<PathBuf>) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if !made.insert(parent.to_path_buf()) {
        return Ok(());
    }
    let mut dir = target.to_path_buf();
    for c in parent.components() {
        match c {
            Component::Normal(part) => dir.push(part),
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir | Component::Prefix(_) => return Ok(()),
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir)?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// If `path` is a whiteout, deletes what it hides under `target` and says
/// so. Only plain relative components are accepted: a whiteout is a
/// deletion, and one naming `..` would reach outside the layer.
fn apply_whiteout(path: &Path, target: &Path) -> io::Result<bool> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(false);
    };
    let Some(hidden) = name.strip_prefix(".wh.") else {
        return Ok(false);
    };
    let mut dir = target.to_path_buf();
    for c in path.parent().into_iter().flat_map(|p| p.components()) {
        match c {
            Component::Normal(part) => dir.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::other(format!(
                    "whiteout {path:?} leaves the layer"
                )))
            }
        }
    }
    // Nothing under a symlink: the layer must not delete through one.
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        return Ok(true);
    }
    let remove = |p: &Path| -> io::Result<()> {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    };
    if hidden == ".wh..opq" {
        if let Ok(children) = std::fs::read_dir(&dir) {
            for child in children {
                remove(&child?.path())?;
            }
        }
    } else if !hidden.is_empty() && hidden != "." && hidden != ".." {
        remove(&dir.join(hidden))?;
    }
    Ok(true)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A base name from an archive's file name: `busybox.tar.xz` -> `busybox`.
pub fn name_from_source(source: &str) -> String {
    let file = source.rsplit('/').next().unwrap_or(source);
    let file = file.split(['?', '#']).next().unwrap_or(file);
    for ext in [
        ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar",
    ] {
        if let Some(stem) = file.strip_suffix(ext) {
            return stem.to_string();
        }
    }
    file.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fetch_policy::UNREACHABLE;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(detect(b"\xfd7zXZ\x00\x00"), Some(Compression::Xz));
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Compression::Zstd)
        );
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&tar), Some(Compression::None));
        assert_eq!(detect(b"BZh91AY&SY"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn names_from_sources() {
        assert_eq!(name_from_source("/tmp/busybox.tar.xz"), "busybox");
        assert_eq!(name_from_source("https://h/x/base.txz?sig=1"), "base");
        assert_eq!(name_from_source("rootfs.tar"), "rootfs");
        assert_eq!(name_from_source("plain"), "plain");
    }

    fn tarball(dir: &Path) -> Vec<u8> {
        std::fs::create_dir_all(dir.join("src/bin")).unwrap();
        std::fs::write(dir.join("src/bin/hello"), b"hi\n").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", dir.join("src")).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn stage_hashes_and_unpack_handles_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        let plain = tarball(dir.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(&plain), &mut xz).unwrap();
        for (i, bytes) in [plain.clone(), gz, xz].into_iter().enumerate() {
            let src = dir.path().join(format!("a{i}.tar"));
            std::fs::write(&src, &bytes).unwrap();
            let mut seen = 0;
            let staged = stage(
                src.to_str().unwrap(),
                &dir.path().join("staging"),
                Urls::Trusted,
                &mut |n| {
                    seen = n;
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
            assert_eq!(staged.sha256, hex::encode(Sha256::digest(&bytes)));
            assert_eq!(seen, bytes.len() as u64);
            let target = dir.path().join(format!("out{i}"));
            std::fs::create_dir(&target).unwrap();
            unpack(&staged, "a.tar", &target).unwrap();
            assert_eq!(std::fs::read(target.join("bin/hello")).unwrap(), b"hi\n");
            let staging = staged.path.clone();
            drop(staged);
            assert!(!staging.exists());
        }
    }

    /// An HTTP server on `listener` that answers its connections in turn
    /// with `answers` (whole responses), then stops.
    fn http_server(
        listener: std::net::TcpListener,
        answers: Vec<Vec<u8>>,
    ) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let Ok((mut conn, _)) = listener.accept() else {
                    break;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read_exact(&mut byte).is_ok() {
                    head.push(byte[0]);
                }
                requests.push(String::from_utf8_lossy(&head).into_owned());
                let _ = conn.write_all(&answer);
            }
            requests
        })
    }

    fn ok_response(body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn redirect(location: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    }

    fn checked(url: &str, policy: &FetchPolicy, dir: &Path) -> Result<Staged, ArchiveError> {
        stage(
            url,
            dir,
            Urls::Checked(&Arc::new(policy.clone())),
            &mut |_| ControlFlow::Continue(()),
        )
    }

    fn is_unreachable(result: Result<Staged, ArchiveError>) -> bool {
        matches!(result, Err(ArchiveError::Fetch { why, .. }) if why == UNREACHABLE)
    }

    #[test]
    fn refused_and_closed_urls_give_one_error_and_connect_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        open.set_nonblocking(true).unwrap();
        let port = open.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let none = FetchPolicy::default();
        for url in [
            format!("http://127.0.0.1:{port}/a.tar"),
            format!("http://127.0.0.1:{closed}/a.tar"),
            format!("http://localhost:{port}/a.tar"),
            format!("http://[::1]:{port}/a.tar"),
            format!("http://[::ffff:127.0.0.1]:{port}/a.tar"),
            format!("http://0.0.0.0:{port}/a.tar"),
            format!("http://2130706433:{port}/a.tar"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://10.0.0.1:1/a.tar".to_string(),
        ] {
            assert!(is_unreachable(checked(&url, &none, dir.path())), "{url}");
        }
        assert!(
            matches!(open.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "nothing connected to the listening port"
        );
        // Allowed but closed: the same words as refused.
        let allowed = FetchPolicy::parse(&["127.0.0.1"]).unwrap();
        let url = format!("http://127.0.0.1:{closed}/a.tar");
        assert!(is_unreachable(checked(&url, &allowed, dir.path())), "{url}");
    }

    #[test]
    fn an_allowed_server_is_fetched_and_each_redirect_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tarball(dir.path());
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let elsewhere = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let other = elsewhere.local_addr().unwrap();
        let answers = vec![
            redirect("/real.tar"),
            ok_response(&tar),
            redirect(&format!("http://{other}/a.tar")),
        ];
        let requests = http_server(server, answers);
        let policy = FetchPolicy::parse(&["127.0.0.1/32"]).unwrap();
        let url = format!("http://user:secret@127.0.0.1:{port}/first.tar");
        let staged = checked(&url, &policy, dir.path()).unwrap();
        assert_eq!(staged.sha256, hex::encode(Sha256::digest(&tar)));
        let refused = checked(&url, &policy, dir.path());
        let Err(e) = refused else {
            panic!("a redirect to a refused address was followed")
        };
        assert_eq!(
            e.to_string(),
            format!("cannot fetch http://user:***@127.0.0.1:{port}/first.tar: {UNREACHABLE}")
        );
        assert!(
            matches!(elsewhere.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the redirect's target was not connected to"
        );
        let requests = requests.join().unwrap();
        assert!(requests[1].starts_with("GET /real.tar "), "{requests:?}");
    }

    #[test]
    fn missing_parents_are_made_0755_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("link")).unwrap();
        let mut made = HashSet::new();
        make_parents(&target, Path::new("./usr/lib/x.so"), &mut made).unwrap();
        let mode = std::fs::metadata(target.join("usr/lib"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        make_parents(&target, Path::new("link/a/b"), &mut made).unwrap();
        make_parents(&target, Path::new("../escape/b"), &mut made).unwrap();
        assert!(
            !outside.join("a").exists(),
            "nothing made through a symlink"
        );
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn corrupt_and_unknown_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = tarball(dir.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let cut = dir.path().join("cut.tar.gz");
        std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
        let staged = stage(
            cut.to_str().unwrap(),
            dir.path(),
            Urls::Trusted,
            &mut |_| ControlFlow::Continue(()),
        )
        .unwrap();
        let target = dir.path().join("t1");
        std::fs::create_dir(&target).unwrap();
        assert!(matches!(
            unpack(&staged, "cut", &target),
            Err(ArchiveError::Corrupt { .. })
        ));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not an archive at all").unwrap();
        let staged = stage(
            junk.to_str().unwrap(),
            dir.path(),
            Urls::Trusted,
            &mut |_| ControlFlow::Continue(()),
        )
        .unwrap();
        assert!(matches!(
            unpack(&staged, "junk", &target),
            Err(ArchiveError::UnknownFormat(_))
        ));
        assert!(matches!(
            stage("/nonexistent.tar", dir.path(), Urls::Trusted, &mut |_| {
                ControlFlow::Continue(())
            }),
            Err(ArchiveError::Read { .. })
        ));
    }
}
