//! `/v1/bases`: read-only root file systems. An import (from a URL, an
//! uploaded archive or an uploaded export) is a job; the API answers 202
//! with it. An export (`runtime::export`) is streamed as it is made.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::jobs::Job;
use super::{
    blocking, time, upload, ApiError, ApiJson, ApiQuery, ApiResult, AppState, ListParams, State,
};
pub use crate::model::bases::{Base, ImportRequest};
use crate::store::BaseRow;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(super::unlimited(routes!(list_bases, import_base)))
        .routes(super::unlimited(routes!(import_export)))
        .routes(routes!(get_base, delete_base))
        .routes(routes!(export_base))
}

impl From<BaseRow> for Base {
    fn from(r: BaseRow) -> Self {
        Base {
            id: r.id.to_string(),
            name: r.name.to_string(),
            source: r.source,
            size: r.size,
            state: serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            created: time(r.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ForceParam {
    /// Also remove the pods cloned from it (killing running ones)
    #[serde(default)]
    force: bool,
}

/// List bases
#[utoipa::path(get, path = "/v1/bases", tag = "bases", params(ListParams),
    responses((status = 200, body = Vec<Base>), (status = 400, body = ErrorBody)))]
async fn list_bases(state: State, ApiQuery(p): ApiQuery<ListParams>) -> ApiResult<Json<Vec<Base>>> {
    let rows = blocking(move || state.host.bases()).await?;
    let rows = p.select(
        rows,
        |b| vec![b.id.to_string(), b.name.to_string(), b.source.clone()],
        &[
            ("name", |a, b| a.name.as_str().cmp(b.name.as_str())),
            ("created", |a, b| a.created_at.cmp(&b.created_at)),
            ("size", |a, b| a.size.cmp(&b.size)),
        ],
    )?;
    Ok(Json(rows.into_iter().map(Base::from).collect()))
}

/// Import a base: JSON `{url, sha256?, name?}`, or the archive as an
/// `application/octet-stream` body with `?name=&sha256=`. Answers 202 with
/// the import job; its result is the base.
#[utoipa::path(post, path = "/v1/bases", tag = "bases", params(ImportRequest),
    request_body(content((ImportRequest = "application/json"), (Vec<u8> = "application/octet-stream"))),
    responses((status = 202, body = Job), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn import_base(state: State, req: Request) -> ApiResult<(StatusCode, Json<Job>)> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (source, name, sha256, uploaded) = if is_json {
        let ApiJson(r) = ApiJson::<ImportRequest>::from_request(req, &()).await?;
        let url = r
            .url
            .ok_or_else(|| ApiError::bad_request("url is required (or upload the archive)"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ApiError::bad_request("url must be http:// or https://"));
        }
        (url, r.name, r.sha256, None)
    } else {
        let (mut parts, body) = req.into_parts();
        let ApiQuery(q) =
            <ApiQuery<ImportRequest> as axum::extract::FromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await?;
        let name = q
            .name
            .ok_or_else(|| ApiError::bad_request("an uploaded base needs ?name="))?;
        crate::names::Name::new("base name", &name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let upload = upload::receive(
            state.catalog.blobs(),
            state.max_upload,
            Request::from_parts(parts, body),
        )
        .await?;
        let dir = state.uploads_dir();
        let path = dir.join(format!("{}.archive", uuid::Uuid::new_v4().simple()));
        let kept = path.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
            upload.blob.persist(&kept).map_err(ApiError::from)
        })
        .await?;
        (path.display().to_string(), Some(name), q.sha256, Some(path))
    };
    let host = state.host.clone();
    let target = name.clone().unwrap_or_else(|| source.clone());
    let job = state
        .jobs
        .submit(crate::jobs::JobKind::Import, Some(target), move |ctx| {
            ctx.log(&format!(
                "importing {}",
                uploaded
                    .as_ref()
                    .map(|_| "the uploaded archive")
                    .unwrap_or(&source)
            ));
            let mut logged = 0u64;
            let mut progress = |n: u64| {
                if n >= logged + (64 << 20) {
                    logged = n;
                    ctx.log(&format!("{} MiB read", n >> 20));
                }
                if ctx.cancelled() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            let result =
                host.import_base(&source, name.as_deref(), sha256.as_deref(), &mut progress);
            if let Some(path) = &uploaded {
                let _ = std::fs::remove_file(path);
            }
            let imported = result?;
            if imported.existed {
                ctx.log(&format!("base {} was imported already", imported.base.name));
            }
            Ok(serde_json::to_value(Base::from(imported.base))?)
        })?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// Show a base (by id, name or id prefix)
#[utoipa::path(get, path = "/v1/bases/{id}", tag = "bases",
    params(("id" = String, Path, description = "base id, name or id prefix")),
    responses((status = 200, body = Base), (status = 404, body = ErrorBody)))]
async fn get_base(state: State, Path(id): Path<String>) -> ApiResult<Json<Base>> {
    let row = blocking(move || state.host.base(&id)).await?;
    Ok(Json(row.into()))
}

/// Remove a base; 409 while pods use it, unless `force`
#[utoipa::path(delete, path = "/v1/bases/{id}", tag = "bases",
    params(("id" = String, Path, description = "base id, name or id prefix"), ForceParam),
    responses((status = 200, body = Base), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_base(
    state: State,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ForceParam>,
) -> ApiResult<Json<Base>> {
    let row = blocking(move || {
        state.host.remove_base_with(
            &id,
            p.force,
            &crate::build::BuilderHolds::Fleet(&state.catalog),
        )
    })
    .await?;
    Ok(Json(row.into()))
}

/// Export a base: the file `jetpack base export` writes (an envelope with
/// the base's metadata and sha256 around the datasets driver's stream),
/// for `POST /v1/bases/import` or `jetpack base import` on another host
#[utoipa::path(get, path = "/v1/bases/{id}/export", tag = "bases",
    params(("id" = String, Path, description = "base id, name or id prefix")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn export_base(state: State, Path(id): Path<String>) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use std::io::Write;
    // Made whole first (its header needs the payload's sha256), in the
    // uploads folder the server empties at start.
    let dir = state.uploads_dir();
    let path = dir.join(format!("{}.export", uuid::Uuid::new_v4().simple()));
    let kept = path.clone();
    let host = state.host.clone();
    let header = blocking(move || {
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let file = std::fs::File::create(&kept).map_err(ApiError::internal)?;
        let mut out = std::io::BufWriter::new(file);
        let made = host
            .export_base(&id, &mut out, &mut |_| {})
            .map_err(ApiError::from)
            .and_then(|h| out.flush().map(|_| h).map_err(ApiError::internal));
        if made.is_err() {
            // Best effort: the uploads folder is emptied at start anyway.
            let _ = std::fs::remove_file(&kept);
        }
        made
    })
    .await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    // Unlinked once open: the body reads the open file, and nothing stays
    // behind however the download ends.
    let _ = std::fs::remove_file(&path);
    let disposition = format!("attachment; filename=\"{}.jpb\"", header.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        )),
    )
        .into_response())
}

/// Import a base export (what `GET /v1/bases/{id}/export` gives) uploaded
/// as an `application/octet-stream` body. Answers 202 with the import job;
/// its result is the base (it fails with 409-like words when the base's
/// id or name is taken, and leaves nothing when the file is damaged)
#[utoipa::path(post, path = "/v1/bases/import", tag = "bases",
    request_body(content((Vec<u8> = "application/octet-stream"))),
    responses((status = 202, body = Job), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn import_export(state: State, req: Request) -> ApiResult<(StatusCode, Json<Job>)> {
    let upload = upload::receive(state.catalog.blobs(), state.max_upload, req).await?;
    let dir = state.uploads_dir();
    let path = dir.join(format!("{}.import", uuid::Uuid::new_v4().simple()));
    let kept = path.clone();
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        upload.blob.persist(&kept).map_err(ApiError::from)
    })
    .await?;
    let host = state.host.clone();
    let job = state.jobs.submit(
        crate::jobs::JobKind::Import,
        Some("export".into()),
        move |ctx| {
            ctx.log("importing the uploaded base export");
            let result = std::fs::File::open(&path)
                .map_err(|source| crate::runtime::RuntimeError::Io {
                    what: "opening the uploaded export".into(),
                    source,
                })
                .and_then(|f| host.import_export(&mut std::io::BufReader::new(f), &mut |_| {}));
            let _ = std::fs::remove_file(&path);
            Ok(serde_json::to_value(Base::from(result?.base))?)
        },
    )?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}
