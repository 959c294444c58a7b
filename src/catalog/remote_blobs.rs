//! Blobs on another host of the fleet (an image built or uploaded there,
//! an ISO or a microkernel stored there): fetched when this host needs the
//! bytes (a deploy, a launch, a download, the file server), verified
//! against the row's sha256 and size, and kept in this host's blob store
//! after. How the bytes travel is the hosts'
//! business (`BlobSource`, set at start when several hosts share the store).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Catalog, CatalogError};
use crate::store::blobs::BlobError;
use crate::store::catalog::ImageRow;

/// Where blobs this host lacks come from.
pub trait BlobSource: Send + Sync {
    /// The bytes at `api_path` (an image's, a stored boot file's) of
    /// `host`'s API.
    fn fetch(&self, host: &str, api_path: &str) -> Result<Box<dyn Read + Send>, String>;
}

/// A blob another host has: what it is (for messages), where that host
/// serves it, and what its bytes must be.
pub struct RemoteBlob<'a> {
    pub what: String,
    pub host: Option<&'a str>,
    pub api_path: String,
    pub sha256: &'a str,
    pub size: u64,
}

impl Catalog {
    /// Sets where missing blobs come from (once; later calls are ignored).
    pub fn set_blob_source(&self, source: Arc<dyn BlobSource>) {
        let _ = self.blob_source.set(source);
    }

    /// The path of `image`'s blob; fetched first from the host that has it
    /// when this one does not. Blocking.
    pub fn image_blob(&self, image: &ImageRow) -> Result<PathBuf, CatalogError> {
        self.remote_blob(RemoteBlob {
            what: format!("image {}", image.id),
            host: image.host.as_deref(),
            api_path: format!("/v1/images/{}", image.id),
            sha256: &image.sha256,
            size: image.size,
        })
    }

    /// The answer of `host`'s API at `api_path`, read as it comes; `what`
    /// names it in errors. Only with a shared store (several hosts).
    pub fn fetch_from(
        &self,
        host: &str,
        api_path: &str,
        what: &str,
    ) -> Result<Box<dyn Read + Send>, CatalogError> {
        let failed = |why: String| CatalogError::Fetch {
            what: what.to_string(),
            host: host.to_string(),
            why,
        };
        let source = self
            .blob_source
            .get()
            .ok_or_else(|| failed("this host shares no store with others".into()))?;
        source.fetch(host, api_path).map_err(failed)
    }

    /// The path of a blob this host has, or fetches now from the host the
    /// row names: verified against its SHA-256 and size, kept after.
    pub fn remote_blob(&self, blob: RemoteBlob<'_>) -> Result<PathBuf, CatalogError> {
        let path = self.blobs.path(blob.sha256)?;
        if path.exists() {
            return Ok(path);
        }
        let missing = || CatalogError::Blob(BlobError::NotFound(blob.sha256.to_string()));
        let Some(host) = blob.host.filter(|h| *h != self.host) else {
            return Err(missing());
        };
        if self.blob_source.get().is_none() {
            return Err(missing());
        }
        let fetch_failed = |why: String| CatalogError::Fetch {
            what: blob.what.clone(),
            host: host.to_string(),
            why,
        };
        let mut reader = self.fetch_from(host, &blob.api_path, &blob.what)?;
        let mut staged = self.blobs.stage()?;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| fetch_failed(e.to_string()))?;
            if n == 0 {
                break;
            }
            if staged.size() + n as u64 > blob.size {
                return Err(fetch_failed(format!(
                    "it sent more than the {} bytes it has",
                    blob.size
                )));
            }
            staged.write_chunk(&chunk[..n])?;
        }
        let got = staged.sha256_hex();
        if got != blob.sha256 {
            return Err(fetch_failed(format!(
                "the bytes it sent have the SHA-256 {got}, not {}",
                blob.sha256
            )));
        }
        staged.commit()?;
        tracing::info!(
            "{} fetched from host {host} ({} bytes)",
            blob.what,
            blob.size
        );
        Ok(path)
    }
}
