//! `/v1/netboot`: which unikernel image a machine booting with iPXE gets,
//! by its MAC (issue 19, item 4). The file server's `/boot/ipxe?mac=`
//! reads these mappings; the rules are `netboot::`'s, this file only
//! translates HTTP.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, ApiError, ApiJson, ApiResult, AppState, State};
pub use crate::model::netboot::{NetbootMapping, NetbootRequest};
use crate::netboot::{Netboot, NetbootError, NetbootTarget, Wanted};
use crate::store::netboot::NetbootRow;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_netboot))
        .routes(routes!(get_netboot, put_netboot, delete_netboot))
}

impl From<NetbootError> for ApiError {
    fn from(e: NetbootError) -> Self {
        use NetbootError as N;
        match e {
            N::BadMac(_) | N::BadAppend(_) | N::Invalid(_) | N::Name(_) | N::Ambiguous(_) => {
                ApiError::bad_request(e.to_string())
            }
            N::NoMapping(_) | N::NoImage(_) | N::NoTagged(_) | N::ImageGone { .. } => {
                ApiError::not_found(e.to_string())
            }
            N::Catalog(e) => e.into(),
            N::Store(e) => e.into(),
        }
    }
}

impl From<NetbootRow> for NetbootMapping {
    fn from(r: NetbootRow) -> Self {
        let (image_id, tag) = match r.target {
            NetbootTarget::Image(id) => (Some(id.to_string()), None),
            NetbootTarget::Tag(tag) => (None, Some(tag.to_string())),
        };
        NetbootMapping {
            mac: r.mac,
            image_id,
            tag,
            append: r.append,
            created: time(r.created_at),
            updated: time(r.updated_at),
        }
    }
}

/// The service is the catalog's store and images: nothing to keep.
fn service(state: &AppState) -> Netboot {
    Netboot::new(state.catalog.clone())
}

/// List netboot mappings
#[utoipa::path(get, path = "/v1/netboot", tag = "netboot",
    responses((status = 200, body = Vec<NetbootMapping>)))]
async fn list_netboot(state: State) -> ApiResult<Json<Vec<NetbootMapping>>> {
    let rows = blocking(move || service(&state).list()).await?;
    Ok(Json(rows.into_iter().map(NetbootMapping::from).collect()))
}

/// Show a machine's netboot mapping
#[utoipa::path(get, path = "/v1/netboot/{mac}", tag = "netboot",
    params(("mac" = String, Path, description = "aa:bb:cc:dd:ee:ff (or with '-', any case)")),
    responses((status = 200, body = NetbootMapping), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_netboot(state: State, Path(mac): Path<String>) -> ApiResult<Json<NetbootMapping>> {
    let row = blocking(move || service(&state).get(&mac)).await?;
    Ok(Json(row.into()))
}

/// Map a machine to an image (by id, resolved now) or a tag (its newest
/// image at boot time), with an optional kernel command line; 201 when new
#[utoipa::path(put, path = "/v1/netboot/{mac}", tag = "netboot",
    params(("mac" = String, Path, description = "aa:bb:cc:dd:ee:ff (or with '-', any case)")),
    request_body = NetbootRequest,
    responses((status = 200, body = NetbootMapping), (status = 201, body = NetbootMapping),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_netboot(
    state: State,
    Path(mac): Path<String>,
    ApiJson(req): ApiJson<NetbootRequest>,
) -> ApiResult<(StatusCode, Json<NetbootMapping>)> {
    let wanted = Wanted {
        image: req.image_id,
        tag: req.tag,
        append: req.append,
    };
    let (row, new) = blocking(move || service(&state).set(&mac, wanted)).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(row.into())))
}

/// Delete a machine's netboot mapping
#[utoipa::path(delete, path = "/v1/netboot/{mac}", tag = "netboot",
    params(("mac" = String, Path, description = "aa:bb:cc:dd:ee:ff (or with '-', any case)")),
    responses((status = 200, body = NetbootMapping), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_netboot(state: State, Path(mac): Path<String>) -> ApiResult<Json<NetbootMapping>> {
    let row = blocking(move || service(&state).delete(&mac)).await?;
    Ok(Json(row.into()))
}
