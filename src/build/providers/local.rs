//! The `local` provider: a directory holding builder archives
//! (`ID.tar`, `ID.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.tar.zst`) each with
//! its manifest beside it as `ID.json`. Digests are computed at update and
//! checked again at fetch, so an archive changed in between is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    bob_from_manifest, check_id, fetch_archive, sha256_digest, Bob, Fetched, Progress, Provider,
};
use crate::build::{BuildError, Manifest};

const ARCHIVE_EXTENSIONS: &[&str] = &[
    ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar",
];

pub struct LocalProvider {
    dir: PathBuf,
}

impl LocalProvider {
    pub fn new(dir: &str) -> LocalProvider {
        LocalProvider {
            dir: PathBuf::from(dir),
        }
    }

    fn archive_of(&self, id: &str) -> Option<PathBuf> {
        ARCHIVE_EXTENSIONS
            .iter()
            .map(|ext| self.dir.join(format!("{id}{ext}")))
            .find(|p| p.is_file())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Fetch {
        what: path.display().to_string(),
        why: e.to_string(),
    }
}

fn sha256_of(path: &Path) -> Result<(String, u64), BuildError> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

impl Provider for LocalProvider {
    fn list(&self) -> Result<Vec<Bob>, BuildError> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        let mut bobs = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&self.dir))?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            // One bad entry must not hide the good ones: it is skipped, and said.
            let bob = check_id(id).and_then(|()| {
                let archive = self.archive_of(id).ok_or_else(|| BuildError::Manifest {
                    origin: path.display().to_string(),
                    why: format!("no archive {id}.tar[.gz|.xz|.zst] beside it"),
                })?;
                let text = std::fs::read(&path).map_err(io_err(&path))?;
                let manifest = Manifest::parse(&text, &path.display().to_string())?;
                let (sha256, size) = sha256_of(&archive)?;
                Ok(bob_from_manifest(
                    id,
                    &manifest,
                    size,
                    sha256_digest(&sha256),
                    archive.display().to_string(),
                ))
            });
            match bob {
                Ok(bob) => bobs.push(bob),
                Err(e) => tracing::warn!("bob provider {}: skipping {id}: {e}", self.dir.display()),
            }
        }
        bobs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(bobs)
    }

    fn fetch(
        &self,
        bob: &Bob,
        staging: &Path,
        progress: &mut Progress,
    ) -> Result<Fetched, BuildError> {
        fetch_archive(bob, staging, progress)
    }
}
