//! Blobs: immutable files addressed by their sha256 under `<data.dir>/blobs`.
//! A blob is written to `staging/`, hashed (sha256 and sha1) as it is
//! written, fsynced and then renamed into `sha256/<ab>/<hex>`: a reader sees
//! a whole blob or none, and an interrupted write leaves only a staging file
//! that the next `open` removes. Blobs and their directories are private
//! (0600, 0700): see `store::private`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("no blob {0}")]
    NotFound(String),
    #[error("{0:?} is not a sha256 digest")]
    BadDigest(String),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a committed blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
}

fn check_digest(sha256: &str) -> Result<(), BlobError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(BlobError::BadDigest(sha256.to_string()))
    }
}

impl Blobs {
    /// Opens the store at `root`, making it if needed, and removes what
    /// interrupted writes left in staging.
    pub fn open(root: &Path) -> Result<Blobs, BlobError> {
        let blobs = Blobs {
            root: root.to_path_buf(),
        };
        for dir in [blobs.staging_dir(), root.join("sha256")] {
            super::private::create_dir(&dir).map_err(io_at(&dir))?;
        }
        let staging = blobs.staging_dir();
        for entry in fs::read_dir(&staging).map_err(io_at(&staging))? {
            let path = entry.map_err(io_at(&staging))?.path();
            fs::remove_file(&path).map_err(io_at(&path))?;
        }
        Ok(blobs)
    }

    fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Where the blob `sha256` lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        check_digest(sha256)?;
        Ok(self.root.join("sha256").join(&sha256[..2]).join(sha256))
    }

    /// An open blob for reading.
    pub fn open_blob(&self, sha256: &str) -> Result<(File, u64), BlobError> {
        let path = self.path(sha256)?;
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::NotFound(sha256.to_string()),
            _ => io_at(&path)(e),
        })?;
        let size = file.metadata().map_err(io_at(&path))?.len();
        Ok((file, size))
    }

    /// Starts a blob; it becomes visible only when committed.
    pub fn stage(&self) -> Result<StagedBlob, BlobError> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| BlobError::Io {
            path: "getrandom".into(),
            source: io::Error::other(e.to_string()),
        })?;
        let path = self.staging_dir().join(hex::encode(random));
        // 0600: a blob is a user's image or archive.
        let file = super::private::file_options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_at(&path))?;
        Ok(StagedBlob {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            root: self.root.clone(),
            sha256: Sha256::new(),
            sha1: Sha1::new(),
            size: 0,
            head: Vec::new(),
            committed: false,
        })
    }

    pub fn remove(&self, sha256: &str) -> Result<(), BlobError> {
        let path = self.path(sha256)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Removes every blob not in `keep` (left by a crash between a blob's
    /// commit and its row); returns how many went.
    pub fn sweep(&self, keep: &HashSet<String>) -> Result<usize, BlobError> {
        let mut removed = 0;
        let top = self.root.join("sha256");
        for prefix in fs::read_dir(&top).map_err(io_at(&top))? {
            let dir = prefix.map_err(io_at(&top))?.path();
            for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
                let path = entry.map_err(io_at(&dir))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !keep.contains(name) {
                    fs::remove_file(&path).map_err(io_at(&path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Bytes gathered before a write(2): uploads arrive in TLS-record-sized
/// chunks, and a system call per 16 KiB costs more than the copy.
const WRITE_BUFFER: usize = 1 << 20;

/// A blob being written: hashed as it goes, removed unless committed.
pub struct StagedBlob {
    file: BufWriter<File>,
    path: PathBuf,
    root: PathBuf,
    sha256: Sha256,
    sha1: Sha1,
    size: u64,
    head: Vec<u8>,
    committed: bool,
}

/// How many leading bytes a staged blob keeps for type checks (ELF magic).
const HEAD: usize = 64;

impl StagedBlob {
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.sha256.update(chunk);
        self.sha1.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io_at(&self.path))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn sync(&mut self) -> Result<(), BlobError> {
        self.file.flush().map_err(io_at(&self.path))?;
        self.file.get_ref().sync_all().map_err(io_at(&self.path))
    }

    /// The sha256 of what has been written so far, hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256.clone().finalize())
    }

    /// The first bytes written (up to 64).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Syncs the data and moves it to `dest`, outside the blob store (an
    /// upload that is input to something else, such as a base import).
    pub fn persist(mut self, dest: &Path) -> Result<BlobInfo, BlobError> {
        self.sync()?;
        fs::rename(&self.path, dest).map_err(io_at(dest))?;
        self.committed = true;
        Ok(BlobInfo {
            sha256: hex::encode(self.sha256.finalize_reset()),
            sha1: hex::encode(self.sha1.finalize_reset()),
            size: self.size,
        })
    }

    /// Syncs the data and renames it into place (an existing blob with the
    /// same digest is kept as it is).
    pub fn commit(mut self) -> Result<BlobInfo, BlobError> {
        self.sync()?;
        let info = BlobInfo {
            sha256: hex::encode(self.sha256.finalize_reset()),
            sha1: hex::encode(self.sha1.finalize_reset()),
            size: self.size,
        };
        let dir = self.root.join("sha256").join(&info.sha256[..2]);
        super::private::create_dir(&dir).map_err(io_at(&dir))?;
        let target = dir.join(&info.sha256);
        fs::rename(&self.path, &target).map_err(io_at(&target))?;
        self.committed = true;
        // The rename is durable only once its directory is.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at(&dir))?;
        Ok(info)
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_blob_is_addressed_by_its_sha256_and_carries_its_sha1() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let mut staged = blobs.stage().unwrap();
        staged.write_chunk(b"hello ").unwrap();
        staged.write_chunk(b"world").unwrap();
        let info = staged.commit().unwrap();
        assert_eq!(
            info.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(info.sha1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
        assert_eq!(info.size, 11);
        let (_, size) = blobs.open_blob(&info.sha256).unwrap();
        assert_eq!(size, 11);
        // Private, whatever the umask: a blob is a user's image.
        use std::os::unix::fs::PermissionsExt;
        let path = blobs.path(&info.sha256).unwrap();
        for p in [&path, path.parent().unwrap(), &dir.path().join("staging")] {
            let mode = fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        }
        assert_eq!(fs::read_dir(dir.path().join("staging")).unwrap().count(), 0);
    }

    #[test]
    fn an_abandoned_blob_leaves_nothing_and_open_clears_staging() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let mut staged = blobs.stage().unwrap();
        staged.write_chunk(b"half").unwrap();
        drop(staged);
        assert_eq!(fs::read_dir(dir.path().join("staging")).unwrap().count(), 0);
        // A crash does not run Drop: the next open cleans up.
        fs::write(dir.path().join("staging/leftover"), b"x").unwrap();
        Blobs::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("staging")).unwrap().count(), 0);
    }

    #[test]
    fn digests_are_validated_before_they_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        assert!(matches!(
            blobs.path("../../etc/passwd"),
            Err(BlobError::BadDigest(_))
        ));
        assert!(matches!(
            blobs.open_blob(&"0".repeat(64)),
            Err(BlobError::NotFound(_))
        ));
    }

    #[test]
    fn sweep_removes_only_unreferenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let mut keep = HashSet::new();
        for text in [b"a", b"b"] {
            let mut s = blobs.stage().unwrap();
            s.write_chunk(text).unwrap();
            let info = s.commit().unwrap();
            if text == b"a" {
                keep.insert(info.sha256);
            }
        }
        assert_eq!(blobs.sweep(&keep).unwrap(), 1);
        assert_eq!(blobs.sweep(&keep).unwrap(), 0);
    }
}
