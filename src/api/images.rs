//! `/v1/images`: unikernel binaries. Upload streams into a blob (raw body
//! or multipart); the id is the SHA-1 of the bytes, as instances report it.

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{
    blocking, time, upload, wants_raw, ApiError, ApiQuery, ApiResult, AppState, ListParams, State,
};
use crate::catalog::{CatalogError, ImageMeta};
pub use crate::model::images::Image;
use crate::store::catalog::{ImageRow, IMAGES};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(super::unlimited(routes!(list_images, upload_image)))
        .routes(routes!(get_image, delete_image))
}

impl From<ImageRow> for Image {
    fn from(r: ImageRow) -> Self {
        Image {
            sha1: r.id.to_string(),
            id: r.id.to_string(),
            name: r.name,
            tag: r.tag,
            size: r.size,
            sha256: r.sha256,
            builder_id: r.builder_id.map(String::from),
            nacl_id: r.nacl_id.map(String::from),
            uplink_id: r.uplink_id.map(String::from),
            uplink_url: r.uplink_url,
            includeos_version: r.includeos_version,
            created: time(r.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadParams {
    /// Image name (or a `name` form field)
    name: Option<String>,
    /// Image tag (or a `tag` form field)
    tag: Option<String>,
}

/// List images
#[utoipa::path(get, path = "/v1/images", tag = "images", params(ListParams),
    responses((status = 200, body = Vec<Image>), (status = 400, body = ErrorBody)))]
async fn list_images(
    state: State,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<Image>>> {
    let q = p.query(&IMAGES)?;
    let rows = blocking(move || state.catalog.images(&q)).await?;
    Ok(Json(rows.into_iter().map(Image::from).collect()))
}

/// Upload an image: the ELF as the raw body (`application/octet-stream`)
/// with `?name=&tag=`, or as multipart/form-data. 201 when new, 200 when
/// the same binary was stored already.
#[utoipa::path(post, path = "/v1/images", tag = "images", params(UploadParams),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "multipart/form-data"))),
    responses((status = 201, body = Image), (status = 200, body = Image),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_image(
    state: State,
    ApiQuery(p): ApiQuery<UploadParams>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Image>)> {
    // Names and tags given in the query are judged before a byte of the
    // body is read (the catalog judges them all again, form fields too).
    if let Some(name) = &p.name {
        crate::names::Name::new("image name", name).map_err(CatalogError::from)?;
    }
    crate::catalog::check_tag(&p.tag)?;
    let upload = upload::receive(state.catalog.blobs(), state.max_upload, req).await?;
    let name = p
        .name
        .or_else(|| upload.field("name"))
        .ok_or_else(|| ApiError::bad_request("an image name is required (?name=)"))?;
    let tag = p
        .tag
        .or_else(|| upload.field("tag"))
        .filter(|t| !t.is_empty());
    let meta = ImageMeta {
        name,
        tag,
        ..Default::default()
    };
    let (row, existed) = blocking(move || state.catalog.add_image(upload.blob, meta)).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(row.into())))
}

/// Show an image's metadata, or download it with `Accept: application/octet-stream` (Range, ETag)
#[utoipa::path(get, path = "/v1/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id (SHA-1) or a prefix of it")),
    responses((status = 200, content((Image = "application/json"), (Vec<u8> = "application/octet-stream"))),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody), (status = 406, body = ErrorBody), (status = 416, description = "bad range")))]
async fn get_image(
    state: State,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let raw = wants_raw(&headers, &["application/octet-stream"])?;
    let catalog = state.catalog.clone();
    let row = blocking(move || {
        let row = catalog.image(&id)?;
        if raw {
            // Its blob here first (from the host that has it, if another).
            catalog.image_blob(&row)?;
        }
        Ok::<_, ApiError>(row)
    })
    .await?;
    if !raw {
        return Ok(Json(Image::from(row)).into_response());
    }
    let file_name = match &row.tag {
        Some(tag) => format!("{}-{tag}", row.name),
        None => row.name.clone(),
    };
    upload::download(
        state.catalog.blobs(),
        &row.sha256,
        &headers,
        "application/octet-stream",
        Some(file_name),
    )
    .await
}

/// Delete an image
#[utoipa::path(delete, path = "/v1/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id (SHA-1) or a prefix of it")),
    responses((status = 200, body = Image), (status = 404, body = ErrorBody)))]
async fn delete_image(state: State, Path(id): Path<String>) -> ApiResult<Json<Image>> {
    let row = blocking(move || {
        let row = state.catalog.delete_image(&id)?;
        // Its disks go with it; one left behind is swept at the next start.
        if let Err(e) = state.disks.forget(&row.id) {
            tracing::warn!("the disks of deleted image {} stay: {e}", row.id);
        }
        Ok::<_, CatalogError>(row)
    })
    .await?;
    Ok(Json(row.into()))
}
