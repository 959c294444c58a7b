//! `/v1/isos`, `/v1/microkernels` and `/v1/osimages`: the boot files'
//! stores and OS images (issue 19). Uploads stream into blobs (upload.rs:
//! raw body or multipart, `bootfiles.maxupload`, 413 with nothing stored);
//! a stored file downloads with Range and ETag; an OS image is made by a
//! job (202). The rules are `bootfiles::`'s.

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, upload, ApiError, ApiJson, ApiQuery, ApiResult, AppState, State};
use crate::bootfiles::{BootFileRow, OsImageRow, Source, StoreKind};
pub use crate::model::bootfiles::{
    OsImage, OsImageAccepted, OsImageRequest, OsImageSource, StoredFile,
};
use crate::model::jobs::Job;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(super::unlimited(routes!(list_isos, upload_iso)))
        .routes(routes!(get_iso, delete_iso))
        .routes(super::unlimited(routes!(
            list_microkernels,
            upload_microkernel
        )))
        .routes(routes!(get_microkernel, delete_microkernel))
        .routes(routes!(list_osimages, create_osimage))
        .routes(super::unlimited(routes!(upload_osimage)))
        .routes(routes!(get_osimage, delete_osimage))
        .routes(routes!(export_osimage))
}

impl From<BootFileRow> for StoredFile {
    fn from(r: BootFileRow) -> Self {
        StoredFile {
            name: r.name.to_string(),
            size: r.size,
            sha256: r.sha256,
            source: r.source,
            created: time(r.created_at),
        }
    }
}

impl From<OsImageRow> for OsImage {
    fn from(r: OsImageRow) -> Self {
        OsImage {
            name: r.name.to_string(),
            version: r.version.to_string(),
            source_kind: r.source_kind,
            source: r.source,
            state: r.state.as_str().to_string(),
            progress: r.progress,
            reason: r.reason,
            job_id: r.job_id,
            size: r.size,
            sha256: r.sha256.filter(|s| !s.is_empty()),
            created: time(r.created_at),
            updated: time(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NameParam {
    /// The file's name in the store (or a `name` form field)
    name: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OsImageParams {
    /// OS image name (or a `name` form field)
    name: Option<String>,
    /// OS image version (or a `version` form field)
    version: Option<String>,
}

// ---- the stores, shared by both ----

async fn list(state: State, kind: StoreKind) -> ApiResult<Json<Vec<StoredFile>>> {
    let rows = blocking(move || state.bootfiles.list(kind)).await?;
    Ok(Json(rows.into_iter().map(StoredFile::from).collect()))
}

async fn put(
    state: State,
    kind: StoreKind,
    name: Option<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<StoredFile>)> {
    // A name given in the query is judged, and found free, before a byte
    // of the body is read.
    let req = match name.clone() {
        Some(name) => {
            let service = state.bootfiles.clone();
            upload::refuse_early(blocking(move || service.check_free(kind, &name)).await, req)?.1
        }
        None => req,
    };
    let limit = state.bootfiles.settings().max_upload;
    let upload = upload::receive(state.catalog.blobs(), limit, req).await?;
    let name = name
        .or_else(|| upload.field("name"))
        .ok_or_else(|| ApiError::bad_request("a name is required (?name=)"))?;
    let row = blocking(move || state.bootfiles.put(kind, &name, upload.blob, "upload")).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Whether the client asks for the metadata (JSON only) rather than the bytes.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("application/octet-stream")
}

async fn get(
    state: State,
    kind: StoreKind,
    name: String,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let service = state.bootfiles.clone();
    let json = wants_json(&headers);
    let row = blocking(move || {
        let row = service.get(kind, &name)?;
        if !json {
            // Its blob here first (from the host that has it, if another).
            service.blob_here(&row)?;
        }
        Ok::<_, ApiError>(row)
    })
    .await?;
    if json {
        return Ok(Json(StoredFile::from(row)).into_response());
    }
    upload::download(
        state.catalog.blobs(),
        &row.sha256,
        &headers,
        "application/octet-stream",
        Some(row.name.to_string()),
    )
    .await
}

async fn delete(state: State, kind: StoreKind, name: String) -> ApiResult<Json<StoredFile>> {
    let row = blocking(move || state.bootfiles.delete(kind, &name)).await?;
    Ok(Json(row.into()))
}

/// List the ISO store
#[utoipa::path(get, path = "/v1/isos", tag = "bootfiles",
    responses((status = 200, body = Vec<StoredFile>)))]
async fn list_isos(state: State) -> ApiResult<Json<Vec<StoredFile>>> {
    list(state, StoreKind::Iso).await
}

/// Store an ISO: the raw body (`application/octet-stream`) with `?name=`,
/// or multipart/form-data. 409 when the name is taken, 413 over
/// `bootfiles.maxupload`.
#[utoipa::path(post, path = "/v1/isos", tag = "bootfiles", params(NameParam),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "multipart/form-data"))),
    responses((status = 201, body = StoredFile), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
async fn upload_iso(
    state: State,
    ApiQuery(p): ApiQuery<NameParam>,
    req: Request,
) -> ApiResult<(StatusCode, Json<StoredFile>)> {
    put(state, StoreKind::Iso, p.name, req).await
}

/// Download an ISO (Range, ETag), or its metadata with `Accept: application/json`
#[utoipa::path(get, path = "/v1/isos/{name}", tag = "bootfiles",
    params(("name" = String, Path, description = "the ISO's name")),
    responses((status = 200, content((Vec<u8> = "application/octet-stream"), (StoredFile = "application/json"))),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody), (status = 416, description = "bad range")))]
async fn get_iso(
    state: State,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    get(state, StoreKind::Iso, name, headers).await
}

/// Delete an ISO (409 while an OS image is made from it)
#[utoipa::path(delete, path = "/v1/isos/{name}", tag = "bootfiles",
    params(("name" = String, Path, description = "the ISO's name")),
    responses((status = 200, body = StoredFile), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_iso(state: State, Path(name): Path<String>) -> ApiResult<Json<StoredFile>> {
    delete(state, StoreKind::Iso, name).await
}

/// List the microkernel store (kernels, initrds, squashfs and overlay images)
#[utoipa::path(get, path = "/v1/microkernels", tag = "bootfiles",
    responses((status = 200, body = Vec<StoredFile>)))]
async fn list_microkernels(state: State) -> ApiResult<Json<Vec<StoredFile>>> {
    list(state, StoreKind::Microkernel).await
}

/// Store a microkernel file: the raw body with `?name=`, or multipart/form-data
#[utoipa::path(post, path = "/v1/microkernels", tag = "bootfiles", params(NameParam),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "multipart/form-data"))),
    responses((status = 201, body = StoredFile), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
async fn upload_microkernel(
    state: State,
    ApiQuery(p): ApiQuery<NameParam>,
    req: Request,
) -> ApiResult<(StatusCode, Json<StoredFile>)> {
    put(state, StoreKind::Microkernel, p.name, req).await
}

/// Download a microkernel file (Range, ETag), or its metadata with `Accept: application/json`
#[utoipa::path(get, path = "/v1/microkernels/{name}", tag = "bootfiles",
    params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, content((Vec<u8> = "application/octet-stream"), (StoredFile = "application/json"))),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody), (status = 416, description = "bad range")))]
async fn get_microkernel(
    state: State,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    get(state, StoreKind::Microkernel, name, headers).await
}

/// Delete a microkernel file
#[utoipa::path(delete, path = "/v1/microkernels/{name}", tag = "bootfiles",
    params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, body = StoredFile), (status = 404, body = ErrorBody)))]
async fn delete_microkernel(state: State, Path(name): Path<String>) -> ApiResult<Json<StoredFile>> {
    delete(state, StoreKind::Microkernel, name).await
}

// ---- OS images ----

fn accepted(
    row: OsImageRow,
    job: crate::store::jobs::JobRow,
) -> (StatusCode, Json<OsImageAccepted>) {
    (
        StatusCode::ACCEPTED,
        Json(OsImageAccepted {
            osimage: row.into(),
            job: Job::from(job),
        }),
    )
}

/// List OS images
#[utoipa::path(get, path = "/v1/osimages", tag = "bootfiles",
    responses((status = 200, body = Vec<OsImage>)))]
async fn list_osimages(state: State) -> ApiResult<Json<Vec<OsImage>>> {
    let rows = blocking(move || state.bootfiles.osimages()).await?;
    Ok(Json(rows.into_iter().map(OsImage::from).collect()))
}

/// Make an OS image from a path on the server, a URL or a stored ISO: a
/// job (202) that downloads, extracts and seals it
#[utoipa::path(post, path = "/v1/osimages", tag = "bootfiles", request_body = OsImageRequest,
    responses((status = 202, body = OsImageAccepted), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_osimage(
    state: State,
    ApiJson(req): ApiJson<OsImageRequest>,
) -> ApiResult<(StatusCode, Json<OsImageAccepted>)> {
    let (row, job) = blocking(move || {
        let source = match req.source {
            OsImageSource::Path { path } => Source::Path(crate::bootfiles::check_path(&path)?),
            OsImageSource::Url { url, sha256 } => {
                crate::bootfiles::check_url(&url)?;
                let sha256 = sha256
                    .map(|s| crate::bootfiles::check_sha256(&s))
                    .transpose()?;
                Source::Url { url, sha256 }
            }
            OsImageSource::Iso { iso } => {
                Source::Iso(crate::bootfiles::check_name("ISO name", &iso)?)
            }
        };
        state
            .bootfiles
            .create_osimage(&req.name, &req.version, source)
    })
    .await?;
    Ok(accepted(row, job))
}

/// Make an OS image from an uploaded ISO: the raw body with
/// `?name=&version=`, or multipart/form-data; a job (202) extracts it
#[utoipa::path(post, path = "/v1/osimages/upload", tag = "bootfiles", params(OsImageParams),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "multipart/form-data"))),
    responses((status = 202, body = OsImageAccepted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
async fn upload_osimage(
    state: State,
    ApiQuery(p): ApiQuery<OsImageParams>,
    req: Request,
) -> ApiResult<(StatusCode, Json<OsImageAccepted>)> {
    let req = match (p.name.clone(), p.version.clone()) {
        (Some(name), Some(version)) => {
            let service = state.bootfiles.clone();
            upload::refuse_early(
                blocking(move || service.check_osimage_free(&name, &version)).await,
                req,
            )?
            .1
        }
        _ => req,
    };
    let limit = state.bootfiles.settings().max_upload;
    let upload = upload::receive(state.catalog.blobs(), limit, req).await?;
    let name = p
        .name
        .or_else(|| upload.field("name"))
        .ok_or_else(|| ApiError::bad_request("an OS image name is required (?name=)"))?;
    let version = p
        .version
        .or_else(|| upload.field("version"))
        .ok_or_else(|| ApiError::bad_request("an OS image version is required (?version=)"))?;
    let (row, job) = blocking(move || {
        state
            .bootfiles
            .create_osimage(&name, &version, Source::Upload(Box::new(upload.blob)))
    })
    .await?;
    Ok(accepted(row, job))
}

/// Show an OS image
#[utoipa::path(get, path = "/v1/osimages/{name}/{version}", tag = "bootfiles",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = OsImage), (status = 404, body = ErrorBody)))]
async fn get_osimage(
    state: State,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<OsImage>> {
    let row = blocking(move || state.bootfiles.osimage(&name, &version)).await?;
    Ok(Json(row.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportParams {
    /// The stream the asking host's datasets driver reads: `zfs` or `dir`
    stream: String,
}

/// An OS image's tree as this host's datasets driver streams it (`zfs
/// send`, or the dir driver's framed tar), for another host of the fleet
/// to copy (404 when this host has no copy; 400 when its driver streams
/// otherwise)
#[utoipa::path(get, path = "/v1/osimages/{name}/{version}/export", tag = "bootfiles",
    params(("name" = String, Path), ("version" = String, Path), ExportParams),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_osimage(
    state: State,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let write =
        blocking(move || state.bootfiles.export_osimage(&name, &version, &q.stream)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        super::written_body::written_body(write),
    )
        .into_response())
}

/// Delete an OS image and its contents (409 while its job runs)
#[utoipa::path(delete, path = "/v1/osimages/{name}/{version}", tag = "bootfiles",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = OsImage), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_osimage(
    state: State,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<OsImage>> {
    let row = blocking(move || state.bootfiles.delete_osimage(&name, &version)).await?;
    Ok(Json(row.into()))
}
