//! The server's `Trees`: unikernel images from the catalog (a row by id or
//! the newest by tag, its blob by sha256), OS images and the ISO and
//! microkernel stores from the boot files. A lookup that fails is logged
//! and served as not found: a booting machine learns nothing more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{StoreKind, StoredFile, Trees};
use crate::bootfiles::{BootFiles, BootFilesError};
use crate::catalog::Catalog;
use crate::names::{ImageId, Tag};
use crate::store::catalog::{ImageRow, ListQuery};

pub struct CatalogTrees {
    catalog: Arc<Catalog>,
    bootfiles: Arc<BootFiles>,
}

/// Some(value), or None with a log line unless the thing is simply absent.
fn found<T>(what: &str, r: Result<T, BootFilesError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(BootFilesError::NotFound { .. }) => None,
        Err(e) => {
            tracing::warn!("files: {what}: {e}");
            None
        }
    }
}

impl CatalogTrees {
    pub fn new(catalog: Arc<Catalog>, bootfiles: Arc<BootFiles>) -> CatalogTrees {
        CatalogTrees { catalog, bootfiles }
    }

    fn file_of(&self, row: ImageRow) -> Option<StoredFile> {
        // Fetched first from the host that has it, when another does.
        let path = self
            .catalog
            .image_blob(&row)
            .map_err(|e| tracing::warn!("files: image {}: {e}", row.id))
            .ok()?;
        Some(StoredFile {
            name: row.name,
            path,
            size: row.size,
            sha256: row.sha256,
            modified: SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(row.created_at).unwrap_or(0)),
        })
    }
}

impl Trees for CatalogTrees {
    fn os_image(&self, name: &str, version: &str) -> Option<PathBuf> {
        found("OS image", self.bootfiles.osimage_root(name, version))
    }

    fn os_images_read_only(&self) -> bool {
        self.bootfiles.osimages_read_only()
    }

    fn os_images(&self) -> Vec<(String, String)> {
        found("OS images", self.bootfiles.ready_osimages()).unwrap_or_default()
    }

    fn stored(&self, store: StoreKind, name: &str) -> Option<StoredFile> {
        found("stored file", self.bootfiles.stored_file(store, name))
    }

    fn stored_list(&self, store: StoreKind) -> Vec<StoredFile> {
        found("stored files", self.bootfiles.stored_files(store)).unwrap_or_default()
    }

    fn image(&self, id: &str) -> Option<StoredFile> {
        // A whole id only: the catalog's prefix lookup is for people, and a
        // booting machine's URL must name one image for good.
        let id = ImageId::new(id).ok()?;
        let row = match self.catalog.image(id.as_str()) {
            Ok(row) if row.id == id => row,
            Ok(_) => return None,
            Err(crate::catalog::CatalogError::NotFound { .. }) => return None,
            Err(e) => {
                tracing::warn!("files: image {id}: {e}");
                return None;
            }
        };
        self.file_of(row)
    }

    fn image_by_tag(&self, tag: &str) -> Option<StoredFile> {
        let tag = Tag::new("tag", tag).ok()?;
        let newest = self.catalog.images(&ListQuery {
            filters: vec![("tag", tag.as_str().to_string())],
            sort: Some(("created_at", true)),
            limit: Some(1),
            ..ListQuery::default()
        });
        match newest {
            Ok(mut rows) if !rows.is_empty() => self.file_of(rows.remove(0)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("files: images tagged {}: {e}", tag.as_str());
                None
            }
        }
    }
}
