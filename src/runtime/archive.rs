//! Root file system archives: fetching one (file or URL) into a staging file
//! while hashing it, recognising its compression (gzip, xz, zstd or none) by
//! its magic bytes, and unpacking it into a dataset.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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

/// Copies `source` (a path or an http(s) URL) into a new file in
/// `staging_dir`, computing its sha256 on the way; `progress` gets the bytes
/// copied so far and may stop the copy (`Break`: the import is cancelled).
pub fn stage(
    source: &str,
    staging_dir: &Path,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<Staged, ArchiveError> {
    let read_err = |error| ArchiveError::Read {
        source_name: source.to_string(),
        error,
    };
    let input: Box<dyn Read> = if is_url(source) {
        let response = ureq::get(source).call().map_err(|e| ArchiveError::Fetch {
            url: source.to_string(),
            why: e.to_string(),
        })?;
        Box::new(response.into_body().into_reader())
    } else {
        let file = File::open(source).map_err(read_err)?;
        if file.metadata().map_err(read_err)?.is_dir() {
            return Err(read_err(io::Error::other("is a directory")));
        }
        Box::new(file)
    };
    stage_from(source, input, staging_dir, progress)
}

/// Copies `input` (read from `source`, named so in errors) into a new file
/// in `staging_dir`, hashing it on the way.
pub fn stage_from(
    source: &str,
    mut input: Box<dyn Read>,
    staging_dir: &Path,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<Staged, ArchiveError> {
    let read_err = |error| ArchiveError::Read {
        source_name: source.to_string(),
        error,
    };
    std::fs::create_dir_all(staging_dir).map_err(|error| ArchiveError::Staging {
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
    let mut out = File::create(&path).map_err(staging_err)?;
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
            Err(e) if is_url(source) => {
                return Err(ArchiveError::Fetch {
                    url: source.to_string(),
                    why: e.to_string(),
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
    for entry in archive.entries()? {
        let mut entry = entry?;
        entries += 1;
        if kind == Entries::Layer && apply_whiteout(&entry.path()?, target)? {
            continue;
        }
        entry.unpack_in(target)?;
    }
    if entries == 0 {
        return Err(io::Error::other("the archive holds no files"));
    }
    Ok(())
}

/// If `path` is a whiteout, deletes what it hides under `target` and says
/// so. Only plain relative components are accepted: a whiteout is a
/// deletion, and one naming `..` would reach outside the layer.
fn apply_whiteout(path: &Path, target: &Path) -> io::Result<bool> {
    use std::path::Component;
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

    #[test]
    fn corrupt_and_unknown_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = tarball(dir.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let cut = dir.path().join("cut.tar.gz");
        std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
        let staged = stage(cut.to_str().unwrap(), dir.path(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let target = dir.path().join("t1");
        std::fs::create_dir(&target).unwrap();
        assert!(matches!(
            unpack(&staged, "cut", &target),
            Err(ArchiveError::Corrupt { .. })
        ));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not an archive at all").unwrap();
        let staged = stage(junk.to_str().unwrap(), dir.path(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(matches!(
            unpack(&staged, "junk", &target),
            Err(ArchiveError::UnknownFormat(_))
        ));
        assert!(matches!(
            stage("/nonexistent.tar", dir.path(), &mut |_| {
                ControlFlow::Continue(())
            }),
            Err(ArchiveError::Read { .. })
        ));
    }
}
