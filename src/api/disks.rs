//! `GET /v1/images/{id}/disk?format=`: an image as a disk for a hypervisor
//! (Mothership's "Generate & download image"). The disks layer makes it
//! (on a blocking thread: a second or two the first time) or finds it in
//! its cache; this only translates the request and streams the file.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, upload, ApiQuery, ApiResult, AppState, State};
use crate::disks::{DiskError, DiskFormat};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(get_disk))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DiskParams {
    /// raw (the default), qcow2, vmdk, vdi or iso
    format: Option<String>,
}

/// Download an image as a GRUB-bootable disk for a hypervisor: `raw`
/// (`.img`, also bootable as a USB stick), `qcow2` (qemu), `vmdk`
/// (VMware, VirtualBox), `vdi` (VirtualBox) or `iso` (a CD). Made once per
/// image and format, then served from the cache; ETag is its sha256.
#[utoipa::path(get, path = "/v1/images/{id}/disk", tag = "images",
    params(("id" = String, Path, description = "image id (SHA-1) or a prefix of it"), DiskParams),
    responses((status = 200, content((Vec<u8> = "application/octet-stream"), (Vec<u8> = "application/x-iso9660-image"))),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, description = "bad range"), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn get_disk(
    state: State,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<DiskParams>,
) -> ApiResult<Response> {
    let format = DiskFormat::parse(p.format.as_deref().unwrap_or("raw"))?;
    let disks = state.disks.clone();
    let catalog = state.catalog.clone();
    let (disk, file) = blocking(move || {
        let disk = disks.disk(&catalog, &id, format)?;
        // Opened here, off the async workers; the open file is what is
        // sent even if the cache entry goes meanwhile.
        let file = std::fs::File::open(&disk.path).map_err(|source| DiskError::Io {
            what: format!("opening {}", disk.path.display()),
            source,
        })?;
        Ok::<_, DiskError>((disk, file))
    })
    .await?;
    upload::send_file(
        file,
        disk.size,
        &disk.sha256,
        &headers,
        disk.format.content_type(),
        Some(disk.file_name),
    )
    .await
}
