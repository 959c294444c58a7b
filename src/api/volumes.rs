//! `/v1/volumes`: named volumes (datasets that outlive pods), listed,
//! made and removed; removal is refused (409) while a pod names one.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, ApiJson, ApiResult, AppState, State};
pub use crate::model::volumes::{Volume, VolumeRequest};
use crate::runtime::Host;
use crate::store::VolumeRow;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_volumes, create_volume))
        .routes(routes!(delete_volume))
}

/// The volume as the API shows it, with the pods that name it.
impl From<(VolumeRow, Vec<String>)> for Volume {
    fn from((row, pods): (VolumeRow, Vec<String>)) -> Self {
        Volume {
            name: row.name.to_string(),
            created: time(row.created_at),
            pods,
        }
    }
}

fn view(host: &Host, row: VolumeRow) -> Result<Volume, crate::runtime::RuntimeError> {
    let pods = host.volume_users(&row.name)?;
    Ok(Volume::from((row, pods)))
}

/// List named volumes
#[utoipa::path(get, path = "/v1/volumes", tag = "volumes",
    responses((status = 200, body = Vec<Volume>)))]
async fn list_volumes(state: State) -> ApiResult<Json<Vec<Volume>>> {
    let volumes = blocking(move || state.host.volumes_in_use()).await?;
    let volumes = volumes.into_iter().map(Volume::from).collect();
    Ok(Json(volumes))
}

/// Make a named volume
#[utoipa::path(post, path = "/v1/volumes", tag = "volumes", request_body = VolumeRequest,
    responses((status = 201, body = Volume), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_volume(
    state: State,
    ApiJson(req): ApiJson<VolumeRequest>,
) -> ApiResult<(StatusCode, Json<Volume>)> {
    let volume = blocking(move || {
        let host = &state.host;
        let row = host.create_volume(&req.name)?;
        view(host, row)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(volume)))
}

/// Remove a named volume and its data; 409 while a pod names it
#[utoipa::path(delete, path = "/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path, description = "volume name")),
    responses((status = 200, body = Volume), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_volume(state: State, Path(name): Path<String>) -> ApiResult<Json<Volume>> {
    let volume = blocking(move || {
        let row = state.host.remove_volume(&name)?;
        Ok::<_, crate::runtime::RuntimeError>(Volume {
            name: row.name.to_string(),
            created: time(row.created_at),
            pods: Vec::new(),
        })
    })
    .await?;
    Ok(Json(volume))
}
