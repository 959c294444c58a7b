//! `/v1/uplinks`: the uplink objects a build bakes into an image.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, ApiJson, ApiQuery, ApiResult, AppState, ListParams, State};
use crate::catalog::UplinkSpec;
pub use crate::model::uplinks::{Uplink, UplinkRequest};
use crate::store::catalog::{UplinkRow, UPLINKS};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_uplinks, create_uplink))
        .routes(routes!(get_uplink, put_uplink, delete_uplink))
}

impl From<UplinkRow> for Uplink {
    fn from(r: UplinkRow) -> Self {
        Uplink {
            id: r.id.into(),
            name: r.name,
            url: r.url,
            token: r.token,
            tag: r.tag,
            index: r.index,
            verify: r.verify,
            reboot: r.reboot,
            ws_logging: r.ws_logging,
            serialize_ct: r.serialize_ct,
            certs: r.certs,
            send_stats: r.send_stats,
            created: time(r.created_at),
            updated: time(r.updated_at),
        }
    }
}

impl From<UplinkRequest> for UplinkSpec {
    fn from(r: UplinkRequest) -> Self {
        UplinkSpec {
            name: r.name,
            url: r.url,
            token: r.token,
            tag: r.tag,
            index: r.index,
            verify: r.verify,
            reboot: r.reboot,
            ws_logging: r.ws_logging,
            serialize_ct: r.serialize_ct,
            certs: r.certs,
            send_stats: r.send_stats,
        }
    }
}

/// List uplinks
#[utoipa::path(get, path = "/v1/uplinks", tag = "uplinks", params(ListParams),
    responses((status = 200, body = Vec<Uplink>), (status = 400, body = ErrorBody)))]
async fn list_uplinks(
    state: State,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<Uplink>>> {
    let q = p.query(&UPLINKS)?;
    let rows = blocking(move || state.catalog.uplinks(&q)).await?;
    Ok(Json(rows.into_iter().map(Uplink::from).collect()))
}

/// Create an uplink
#[utoipa::path(post, path = "/v1/uplinks", tag = "uplinks", request_body = UplinkRequest,
    responses((status = 201, body = Uplink), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_uplink(
    state: State,
    ApiJson(req): ApiJson<UplinkRequest>,
) -> ApiResult<(StatusCode, Json<Uplink>)> {
    if req.id.is_some() {
        return Err(super::ApiError::bad_request(
            "a new uplink's id is made by the server",
        ));
    }
    let row = blocking(move || state.catalog.create_uplink(req.into())).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Show an uplink (by id, name or id prefix)
#[utoipa::path(get, path = "/v1/uplinks/{id}", tag = "uplinks",
    params(("id" = String, Path, description = "uplink id, name or id prefix")),
    responses((status = 200, body = Uplink), (status = 404, body = ErrorBody)))]
async fn get_uplink(state: State, Path(id): Path<String>) -> ApiResult<Json<Uplink>> {
    let row = blocking(move || state.catalog.uplink(&id)).await?;
    Ok(Json(row.into()))
}

/// Replace an uplink
#[utoipa::path(put, path = "/v1/uplinks/{id}", tag = "uplinks", request_body = UplinkRequest,
    params(("id" = String, Path, description = "uplink id, name or id prefix")),
    responses((status = 200, body = Uplink), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_uplink(
    state: State,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UplinkRequest>,
) -> ApiResult<Json<Uplink>> {
    let row = blocking(move || {
        let old = state.catalog.uplink(&id)?;
        if req
            .id
            .as_ref()
            .is_some_and(|given| old.id != *given.as_str())
        {
            return Err(super::ApiError::bad_request(
                "the body's id is not this uplink's",
            ));
        }
        Ok(state.catalog.replace_uplink(old.id.as_str(), req.into())?)
    })
    .await?;
    Ok(Json(row.into()))
}

/// Delete an uplink
#[utoipa::path(delete, path = "/v1/uplinks/{id}", tag = "uplinks",
    params(("id" = String, Path, description = "uplink id, name or id prefix")),
    responses((status = 200, body = Uplink), (status = 404, body = ErrorBody)))]
async fn delete_uplink(state: State, Path(id): Path<String>) -> ApiResult<Json<Uplink>> {
    let row = blocking(move || state.catalog.delete_uplink(&id)).await?;
    Ok(Json(row.into()))
}
