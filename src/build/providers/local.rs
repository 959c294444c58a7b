//! The `local` provider: a directory holding builder archives
//! (`ID.tar`, `ID.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.tar.zst`) each with
//! its manifest beside it as `ID.json`. Digests are computed at update and
//! checked again at fetch, so an archive changed in between is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    bob_from_manifest, check_id, collect, fetch_archive, sha256_digest, Bob, Fetched, Progress,
    Provider,
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

    /// The bob whose manifest is `manifest`.
    fn bob(&self, manifest: &Path, id: &str) -> Result<Bob, BuildError> {
        check_id(id)?;
        let archive = self.archive_of(id).ok_or_else(|| BuildError::Manifest {
            origin: manifest.display().to_string(),
            why: format!("no archive {id}.tar[.gz|.xz|.zst] beside it"),
        })?;
        let text = std::fs::read(manifest).map_err(io_err(manifest))?;
        let parsed = Manifest::parse(&text, &manifest.display().to_string())?;
        let (sha256, size) = sha256_of(&archive)?;
        Ok(bob_from_manifest(
            id,
            &parsed,
            size,
            sha256_digest(&sha256),
            archive.display().to_string(),
        ))
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
        // An unreadable directory fails the whole list, unlike a bad entry.
        let mut unreadable = None;
        let listed = entries
            .map_while(|entry| entry.map_err(|e| unreadable = Some(e)).ok())
            .filter_map(|entry| {
                let path = entry.path();
                let id = path.file_name()?.to_str()?.strip_suffix(".json")?;
                let bob = self.bob(&path, id);
                Some((id.to_string(), bob))
            });
        let bobs = collect(self.dir.display(), listed);
        match unreadable {
            Some(e) => Err(io_err(&self.dir)(e)),
            None => Ok(bobs),
        }
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
