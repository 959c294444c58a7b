//! Images whose blob is on another host of the fleet (built or uploaded
//! there): fetched by the image's sha256 when this host needs the bytes
//! (a deploy, a launch), verified against the image's row, and kept in
//! this host's blob store after. How the bytes travel is the hosts'
//! business (`BlobSource`, set at start when several hosts share the store).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Catalog, CatalogError};
use crate::store::blobs::BlobError;
use crate::store::catalog::ImageRow;

/// Where blobs this host lacks come from.
pub trait BlobSource: Send + Sync {
    /// The bytes of `image`, from `host`.
    fn fetch(&self, host: &str, image: &ImageRow) -> Result<Box<dyn Read + Send>, String>;
}

impl Catalog {
    /// Sets where missing blobs come from (once; later calls are ignored).
    pub fn set_blob_source(&self, source: Arc<dyn BlobSource>) {
        let _ = self.blob_source.set(source);
    }

    /// The path of `image`'s blob; fetched first from the host that has it
    /// when this one does not. Blocking.
    pub fn image_blob(&self, image: &ImageRow) -> Result<PathBuf, CatalogError> {
        let path = self.blobs.path(&image.sha256)?;
        if path.exists() {
            return Ok(path);
        }
        let missing = || CatalogError::Blob(BlobError::NotFound(image.sha256.clone()));
        let (Some(host), Some(source)) = (image.host.as_deref(), self.blob_source.get()) else {
            return Err(missing());
        };
        if host == self.host {
            return Err(missing());
        }
        let fetch_failed = |why: String| CatalogError::Fetch {
            image: image.id.to_string(),
            host: host.to_string(),
            why,
        };
        let mut reader = source.fetch(host, image).map_err(fetch_failed)?;
        let mut staged = self.blobs.stage()?;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| fetch_failed(e.to_string()))?;
            if n == 0 {
                break;
            }
            if staged.size() + n as u64 > image.size {
                return Err(fetch_failed(format!(
                    "it sent more than the image's {} bytes",
                    image.size
                )));
            }
            staged.write_chunk(&chunk[..n])?;
        }
        let got = staged.sha256_hex();
        if got != image.sha256 {
            return Err(fetch_failed(format!(
                "the bytes it sent have the SHA-256 {got}, not the image's {}",
                image.sha256
            )));
        }
        staged.commit()?;
        tracing::info!(
            "image {} fetched from host {host} ({} bytes)",
            image.id,
            image.size
        );
        Ok(path)
    }
}
