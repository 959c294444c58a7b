//! `POST /v1/instances/{id}/deploy/{imageId}` and `.../upgrade`: their
//! options (query or JSON body) read and checked, then handed to the
//! hangar's deploy and upgrade, which own the rules and the jobs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::jobs::Job;
use crate::api::{blocking, ApiBytes, ApiError, ApiJson, ApiQuery, ApiResult, AppState, State};
use crate::hangar::deploy;
use crate::hangar::upgrade::{self, Upgrades};
pub use crate::model::instances::{DeployRequest, UpgradeRequest};

pub(super) fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(deploy_image))
        .routes(routes!(upgrade_instance))
}

impl DeployRequest {
    /// The query's options under the body's.
    fn over(self, query: DeployRequest) -> DeployRequest {
        DeployRequest {
            force: self.force.or(query.force),
            timeout: self.timeout.or(query.timeout),
        }
    }

    fn timeout(&self) -> ApiResult<Duration> {
        match self.timeout.unwrap_or(120) {
            t @ 1..=3600 => Ok(Duration::from_secs(t)),
            _ => Err(ApiError::bad_request("timeout: 1 to 3600 seconds")),
        }
    }
}

/// Reads a deploy's optional JSON body.
fn deploy_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<DeployRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeployRequest::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::unsupported_media(
            "expected Content-Type: application/json (or no body)",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Live-update an instance with an image, as a job. Refused (409) when the
/// image's uplink URL differs from the instance's or is unknown, unless `force`
#[utoipa::path(post, path = "/v1/instances/{id}/deploy/{imageId}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"),
        ("imageId" = String, Path, description = "image id (SHA-1) or a prefix of it"), DeployRequest),
    request_body(content = Option<DeployRequest>, content_type = "application/json"),
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not docked, refused, or a deploy to it runs"),
        (status = 415, body = ErrorBody)))]
async fn deploy_image(
    state: State,
    Path((id, image)): Path<(String, String)>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<DeployRequest>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let options = deploy_body(&headers, &body)?.over(query);
    let timeout = options.timeout()?;
    let force = options.force.unwrap_or(false);
    let job = blocking(move || {
        let plan = deploy::plan(&state.fleet, &state.catalog, &id, &image, force, timeout)?;
        deploy::submit(&state.jobs, &state.fleet, &state.catalog, plan)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// Rebuild an instance's image with a builder (its own uplink and tag,
/// its NaCl unless another is given), then live-update it: one job.
#[utoipa::path(post, path = "/v1/instances/{id}/upgrade", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    request_body = UpgradeRequest,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not docked, no known uplink, or a deploy to it runs"),
        (status = 422, body = ErrorBody)))]
async fn upgrade_instance(
    state: State,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpgradeRequest>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let timeout = DeployRequest {
        force: None,
        timeout: req.timeout,
    }
    .timeout()?;
    let req = upgrade::UpgradeRequest {
        builder: req.builder_id,
        nacl: req.nacl_id,
        service: req.service,
        force: req.force.unwrap_or(false),
        timeout,
    };
    let job = blocking(move || {
        let upgrades = Upgrades {
            jobs: state.jobs.clone(),
            builders: state.builders.clone(),
            fleet: state.fleet.clone(),
            catalog: state.catalog.clone(),
        };
        upgrades.submit(&id, req, crate::api::builders::build_result)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_options_come_from_the_body_over_the_query() {
        let mut headers = HeaderMap::new();
        let query = DeployRequest {
            force: Some(true),
            timeout: Some(30),
        };
        let none = deploy_body(&headers, b"").unwrap().over(query);
        assert_eq!(
            (none.force, none.timeout().unwrap()),
            (Some(true), Duration::from_secs(30))
        );
        assert_eq!(
            deploy_body(&headers, b"{}").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = deploy_body(&headers, br#"{"timeout": 5}"#).unwrap();
        assert_eq!(body.timeout().unwrap(), Duration::from_secs(5));
        assert_eq!(
            DeployRequest::default().timeout().unwrap(),
            Duration::from_secs(120)
        );
        assert!(deploy_body(&headers, br#"{"forse": true}"#).is_err());
        let zero = DeployRequest {
            timeout: Some(0),
            ..Default::default()
        };
        assert!(zero.timeout().is_err());
        let long = DeployRequest {
            timeout: Some(3601),
            ..Default::default()
        };
        assert!(long.timeout().is_err());
    }
}
