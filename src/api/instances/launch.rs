//! The routes of launched instances: `POST /v1/instances` (a launch job),
//! the console (`tail`, `follow`), and stop, start and restart. HTTP only:
//! the rules are launch::service's.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::super::error::ErrorBody;
use super::super::{blocking, ApiError, ApiJson, ApiQuery, ApiResult, AppState, State};
use super::Instance;
use crate::launch::console;
use crate::launch::service::{Launches, ServiceError};
use crate::launch::{LaunchError, LaunchRecord};
use crate::model::instances::LaunchRequest;
use crate::model::jobs::Job;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(launch_instance))
        .routes(routes!(get_console))
        .routes(routes!(stop_instance))
        .routes(routes!(start_instance))
        .routes(routes!(restart_instance))
}

/// How often a followed console looks for new bytes.
const CONSOLE_POLL: Duration = Duration::from_millis(200);
/// The most a console answer holds without `follow`.
const CONSOLE_MAX: u64 = 1 << 20;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Request(m) => ApiError::bad_request(m),
            ServiceError::Catalog(e) => e.into(),
            ServiceError::Fleet(e) => e.into(),
            ServiceError::Launch(e) => e.into(),
            ServiceError::Job(e) => e.into(),
            ServiceError::NoSeat(m) => ApiError::conflict(m),
            ServiceError::Seats(m) => ApiError::internal(m),
        }
    }
}

impl From<LaunchError> for ApiError {
    fn from(e: LaunchError) -> Self {
        use LaunchError as L;
        match e {
            L::Boot(_) | L::Spec(_) | L::Hypervisor(_) | L::HypervisorUnavailable(_) => {
                ApiError::unprocessable(e.to_string())
            }
            L::Net(_) => ApiError::bad_request(e.to_string()),
            L::Publish(crate::net::publish::PublishError::InUse { .. }) => {
                ApiError::conflict(e.to_string())
            }
            L::Publish(_) => ApiError::internal(e),
            L::NoHypervisorBase { .. } | L::NoChainloader { .. } | L::NotLaunched(_) => {
                ApiError::conflict(e.to_string())
            }
            L::Runtime(e) => e.into(),
            L::Store(e) => e.into(),
            L::BadRecord { .. } | L::Io { .. } | L::Tool(_) => ApiError::internal(e),
        }
    }
}

/// Launch an image (or a kernel) in a pod of its own under a hypervisor: a
/// job whose result is the instance, `launching` until it docks
#[utoipa::path(post, path = "/v1/instances", tag = "instances", request_body = LaunchRequest,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the alias is taken, or the hypervisor base is missing"),
        (status = 422, body = ErrorBody, description = "the image cannot boot, or the spec does not fit the host")))]
async fn launch_instance(
    state: State,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let job = blocking(move || {
        if let Some(host) = &req.host {
            state.hosts.get(host)?;
        }
        Ok::<_, ApiError>(state.launches.submit(&state.jobs, req, launch_result)?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// A made launch as its job's result: the instance, `launching` until it docks.
pub fn launch_result(
    launches: &Launches,
    record: &LaunchRecord,
) -> Result<serde_json::Value, String> {
    let id = launches
        .fleet
        .resolve(&record.instance_id)
        .map_err(|e| e.to_string())?;
    let view = launches.fleet.view(&id).map_err(|e| e.to_string())?;
    let mut instance = vec![Instance::from(view)];
    launches
        .annotate(&mut instance)
        .map_err(|e| e.to_string())?;
    serde_json::to_value(&instance[0]).map_err(|e| e.to_string())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsoleParams {
    /// Only the last N bytes (at most 1 MiB; all of it, to that bound, by default)
    tail: Option<u64>,
    /// Keep the answer open and stream what the console prints next
    #[serde(default)]
    follow: bool,
}

/// A launched instance's serial console, as text
#[utoipa::path(get, path = "/v1/instances/{id}/console", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"), ConsoleParams),
    responses((status = 200, body = String, content_type = "text/plain"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not launched by jetpack")))]
async fn get_console(
    state: State,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ConsoleParams>,
) -> ApiResult<Response> {
    let launches = state.launches.clone();
    let path = blocking(move || launches.console(&id)).await?;
    let max = p.tail.unwrap_or(CONSOLE_MAX).min(CONSOLE_MAX);
    let read = path.clone();
    let (bytes, offset) =
        blocking(move || console::tail(&read, max).map_err(ApiError::internal)).await?;
    let headers = [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))];
    if !p.follow {
        return Ok((headers, bytes).into_response());
    }
    let first = futures_util::stream::iter(
        (!bytes.is_empty()).then(|| Ok::<_, std::io::Error>(Bytes::from(bytes))),
    );
    let more = futures_util::stream::unfold((path, offset), |(path, offset)| async move {
        loop {
            tokio::time::sleep(CONSOLE_POLL).await;
            // A removed instance's console is gone: the stream ends.
            if !path.exists() {
                return None;
            }
            let (bytes, next) = console::read_from(&path, offset, CONSOLE_MAX).ok()?;
            if !bytes.is_empty() {
                return Some((Ok(Bytes::from(bytes)), (path, next)));
            }
        }
    });
    use futures_util::StreamExt;
    Ok((headers, Body::from_stream(first.chain(more))).into_response())
}

async fn verb(
    state: Arc<AppState>,
    id: String,
    act: fn(&crate::launch::service::Launches, &str) -> Result<String, ServiceError>,
) -> ApiResult<Json<Instance>> {
    let instance = blocking(move || {
        let launches = &state.launches;
        let id = act(launches, &id)?;
        let id = launches.fleet.resolve(&id)?;
        let mut one = vec![Instance::from(launches.fleet.view(&id)?)];
        launches.annotate(&mut one)?;
        Ok::<_, ApiError>(one.remove(0))
    })
    .await?;
    Ok(Json(instance))
}

/// Stop a launched instance: its restart policy no longer applies until it is started
#[utoipa::path(post, path = "/v1/instances/{id}/stop", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_instance(state: State, Path(id): Path<String>) -> ApiResult<Json<Instance>> {
    verb(state.0, id, |l, id| l.stop(id)).await
}

/// Start a stopped launched instance (a running one is left as it is)
#[utoipa::path(post, path = "/v1/instances/{id}/start", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_instance(state: State, Path(id): Path<String>) -> ApiResult<Json<Instance>> {
    verb(state.0, id, |l, id| l.start(id)).await
}

/// Stop and start a launched instance: it boots the image it last ran
#[utoipa::path(post, path = "/v1/instances/{id}/restart", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restart_instance(state: State, Path(id): Path<String>) -> ApiResult<Json<Instance>> {
    verb(state.0, id, |l, id| l.restart(id)).await
}
