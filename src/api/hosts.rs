//! `/v1/hosts`: the fleet's jetpack hosts, their heartbeats and status;
//! drain and forget. The rules are `hosts::`'s; this file only
//! translates HTTP.

use std::sync::Arc;

use axum::extract::Path;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, ApiError, ApiQuery, ApiResult, AppState, State};
use crate::hosts::{HostReport, HostsError};
pub use crate::model::hosts::Host;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_hosts))
        .routes(routes!(get_host, delete_host))
        .routes(routes!(drain_host))
}

impl From<HostsError> for ApiError {
    fn from(e: HostsError) -> Self {
        match e {
            HostsError::NoSuchHost(_) => ApiError::not_found(e.to_string()),
            HostsError::NotDown { .. } => ApiError::conflict(e.to_string()),
            HostsError::Store(e) => e.into(),
            HostsError::Thread(e) => ApiError::internal(e),
        }
    }
}

impl From<HostReport> for Host {
    fn from(r: HostReport) -> Self {
        let (h, launched) = (r.view, r.launched);
        let hypervisors = h.row.beat.hypervisors().map(str::to_string).collect();
        let b = h.row.beat;
        Host {
            name: b.name,
            status: h.status.to_string(),
            api_url: b.api_url,
            hangar_url: b.hangar_url,
            pool: b.pool,
            capacity: b.capacity,
            version: b.version,
            instances: b.instances,
            pods: b.pods,
            launch: hypervisors,
            launched,
            memory_mib: b.memory_mib,
            cpus: b.cpus,
            started: time(b.started_at),
            silent_seconds: h.row.silent_ms as f64 / 1000.0,
            is_self: h.me,
        }
    }
}

/// List the fleet's hosts
#[utoipa::path(get, path = "/v1/hosts", tag = "hosts",
    responses((status = 200, body = Vec<Host>)))]
async fn list_hosts(state: State) -> ApiResult<Json<Vec<Host>>> {
    let hosts = blocking(move || state.hosts.report(state.hosts.list()?)).await?;
    Ok(Json(hosts.into_iter().map(Host::from).collect()))
}

/// Show a host
#[utoipa::path(get, path = "/v1/hosts/{name}", tag = "hosts",
    params(("name" = String, Path, description = "the host's name")),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody)))]
async fn get_host(state: State, Path(name): Path<String>) -> ApiResult<Json<Host>> {
    let host = blocking(move || state.hosts.report_one(state.hosts.get(&name)?)).await?;
    Ok(Json(host.into()))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DrainParams {
    /// true: place work on it again
    #[serde(default)]
    pub undo: bool,
}

/// Drain a host: no new work is placed on it (`?undo=true` places work
/// on it again)
#[utoipa::path(post, path = "/v1/hosts/{name}/drain", tag = "hosts",
    params(("name" = String, Path, description = "the host's name"), DrainParams),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody)))]
async fn drain_host(
    state: State,
    Path(name): Path<String>,
    ApiQuery(p): ApiQuery<DrainParams>,
) -> ApiResult<Json<Host>> {
    let host = blocking(move || state.hosts.report_one(state.hosts.drain(&name, p.undo)?)).await?;
    Ok(Json(host.into()))
}

/// Forget a host that is down (409 while it beats)
#[utoipa::path(delete, path = "/v1/hosts/{name}", tag = "hosts",
    params(("name" = String, Path, description = "the host's name")),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_host(state: State, Path(name): Path<String>) -> ApiResult<Json<Host>> {
    let host = blocking(move || state.hosts.report_one(state.hosts.remove(&name)?)).await?;
    Ok(Json(host.into()))
}
