//! `/v1/pods`: jails (or namespace cells) on clones of a base. Starting a
//! pod runs its command under a detached supervisor, so pods outlive the
//! server; stopping one is a PATCH of its state.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{blocking, time, ApiError, ApiJson, ApiQuery, ApiResult, AppState, ListParams, State};
use crate::model::pods::{CpusValue, PodLimits, PodLimitsRequest, PodUsage, SizeValue};
pub use crate::model::pods::{Pod, PodPatch, PodRequest, PodVolume, WantedState};
use crate::runtime::limits::{LimitWords, Limits, Usage};
use crate::runtime::{Host, Pod as RuntimePod, PodOptions};
use crate::store::PodPolicy;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_pods, create_pod))
        .routes(routes!(get_pod, patch_pod, delete_pod))
        .routes(routes!(get_pod_log))
}

impl From<RuntimePod> for Pod {
    fn from(p: RuntimePod) -> Self {
        let r = p.row;
        Pod {
            id: r.id.to_string(),
            name: r.name.map(|n| n.to_string()),
            base: r.base_id.to_string(),
            base_name: p.base_name,
            command: r.command,
            address: r.address.map(|a| a.to_string()),
            state: r.state.to_string(),
            exit_code: r.exit_code,
            created: time(r.created_at),
            started: r.started_at.map(time),
            finished: r.finished_at.map(time),
            env: r.env,
            volumes: r
                .volumes
                .into_iter()
                .map(|v| PodVolume {
                    source: v.source,
                    target: v.target,
                    read_only: v.read_only,
                })
                .collect(),
            limits: PodLimits {
                memory: r.limits.memory,
                cpus: r.limits.cpus,
                pids: r.limits.pids,
                disk: r.limits.disk,
                maxproc: r.limits.maxproc,
            },
            exit_reason: r.exit_reason,
            usage: p.usage.map(pod_usage),
            restart: r.policy.restart.to_string(),
            restarts: r.restarts,
            autostart: r.policy.autostart,
            publish: r.policy.publish.iter().map(|p| p.to_string()).collect(),
            vnet: r.policy.vnet,
        }
    }
}

fn pod_usage(u: Usage) -> PodUsage {
    PodUsage {
        memory_current: u.memory_current,
        memory_max: u.memory_max,
        pids_current: u.pids_current,
        pids_max: u.pids_max,
        cpu_seconds: u.cpu_seconds,
        cpus_max: u.cpus_max,
        oom_kills: u.oom_kills,
        disk_used: u.disk_used,
        disk_quota: u.disk_quota,
    }
}

/// The create body's limits, checked (`Limits::parse`).
pub fn limits_of(req: Option<PodLimitsRequest>) -> Result<Limits, ApiError> {
    let Some(r) = req else {
        return Ok(Limits::default());
    };
    let size = |v: Option<SizeValue>| {
        v.map(|v| match v {
            SizeValue::Bytes(n) => n.to_string(),
            SizeValue::Text(t) => t,
        })
    };
    let words = LimitWords {
        memory: size(r.memory),
        cpus: r.cpus.map(|c| match c {
            CpusValue::Number(n) => n.to_string(),
            CpusValue::Text(t) => t,
        }),
        pids: r.pids,
        disk: size(r.disk),
        maxproc: r.maxproc,
    };
    Limits::parse(&words).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PodListParams {
    /// Search: a substring of the id, name, base or address
    q: Option<String>,
    /// Only pods in this state
    state: Option<String>,
    /// Order by name, created or state; `-` reverses
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ForceParam {
    /// Kill a running pod first
    #[serde(default)]
    force: bool,
}

/// List pods
#[utoipa::path(get, path = "/v1/pods", tag = "pods", params(PodListParams),
    responses((status = 200, body = Vec<Pod>), (status = 400, body = ErrorBody)))]
async fn list_pods(
    state: State,
    ApiQuery(p): ApiQuery<PodListParams>,
) -> ApiResult<Json<Vec<Pod>>> {
    let mut pods = blocking(move || state.host.pods()).await?;
    if let Some(wanted) = &p.state {
        pods.retain(|pod| pod.row.state.to_string() == *wanted);
    }
    let list = ListParams {
        q: p.q,
        sort: p.sort,
        limit: p.limit,
        offset: p.offset,
    };
    let pods = list.select(
        pods,
        |pod| {
            let r = &pod.row;
            vec![
                r.id.to_string(),
                pod.label(),
                pod.base_name.clone(),
                r.address.map(|a| a.to_string()).unwrap_or_default(),
            ]
        },
        &[
            ("name", |a, b| a.label().cmp(&b.label())),
            ("created", |a, b| a.row.created_at.cmp(&b.row.created_at)),
            ("state", |a, b| {
                a.row.state.to_string().cmp(&b.row.state.to_string())
            }),
        ],
    )?;
    Ok(Json(pods.into_iter().map(Pod::from).collect()))
}

fn start(host: &Host, pod: &RuntimePod) -> Result<RuntimePod, ApiError> {
    host.run_pod_detached(pod, None)?;
    Ok(host.pod(pod.row.id.as_str())?)
}

/// Create a pod from a base, and start it with `state: running`
#[utoipa::path(post, path = "/v1/pods", tag = "pods", request_body = PodRequest,
    responses((status = 201, body = Pod), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_pod(
    state: State,
    ApiJson(req): ApiJson<PodRequest>,
) -> ApiResult<(StatusCode, Json<Pod>)> {
    let events = state.events.clone();
    let wanted = req.state.unwrap_or(WantedState::Created);
    if wanted == WantedState::Exited {
        return Err(ApiError::bad_request(
            "a new pod's state is created or running",
        ));
    }
    let limits = limits_of(req.limits)?;
    let policy = PodPolicy::parse(
        req.restart.as_deref(),
        req.autostart.unwrap_or(false),
        req.publish.as_deref().unwrap_or_default(),
        req.vnet.unwrap_or(false),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let pod = blocking(move || {
        let host = &state.host;
        let options = PodOptions {
            env: req.env.unwrap_or_default(),
            volumes: req.volumes.unwrap_or_default(),
            limits,
            policy,
        };
        let pod = host.create_pod_with(
            &req.base,
            req.name.as_deref(),
            req.command.unwrap_or_default(),
            &options,
        )?;
        if wanted == WantedState::Running {
            // A pod that cannot start is not left behind half-made.
            return start(host, &pod).inspect_err(|_| {
                let _ = host.remove_pod(&pod, true);
            });
        }
        Ok::<_, ApiError>(pod)
    })
    .await?;
    let pod = Pod::from(pod);
    events.pod(&pod.id, &pod.state);
    Ok((StatusCode::CREATED, Json(pod)))
}

/// Show a pod (by id, name or id prefix)
#[utoipa::path(get, path = "/v1/pods/{id}", tag = "pods",
    params(("id" = String, Path, description = "pod id, name or id prefix")),
    responses((status = 200, body = Pod), (status = 404, body = ErrorBody)))]
async fn get_pod(state: State, Path(id): Path<String>) -> ApiResult<Json<Pod>> {
    let pod = blocking(move || {
        let host = &state.host;
        host.pod(&id).map(|p| host.with_usage(p))
    })
    .await?;
    Ok(Json(pod.into()))
}

/// Start (`running`) or stop (`exited`) a pod
#[utoipa::path(patch, path = "/v1/pods/{id}", tag = "pods", request_body = PodPatch,
    params(("id" = String, Path, description = "pod id, name or id prefix")),
    responses((status = 200, body = Pod), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn patch_pod(
    state: State,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<PodPatch>,
) -> ApiResult<Json<Pod>> {
    let events = state.events.clone();
    let pod = blocking(move || {
        let host = &state.host;
        let pod = host.pod(&id)?;
        match patch.state {
            WantedState::Running => start(host, &pod),
            WantedState::Exited => {
                host.kill_pod(&pod)?;
                Ok(host.pod(&id)?)
            }
            WantedState::Created => Err(ApiError::bad_request(
                "a pod's state can be set to running or exited",
            )),
        }
    })
    .await?;
    let pod = Pod::from(pod);
    events.pod(&pod.id, &pod.state);
    Ok(Json(pod))
}

/// Remove a pod and its clone; 409 while it runs, unless `force`
#[utoipa::path(delete, path = "/v1/pods/{id}", tag = "pods",
    params(("id" = String, Path, description = "pod id, name or id prefix"), ForceParam),
    responses((status = 200, body = Pod), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_pod(
    state: State,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ForceParam>,
) -> ApiResult<Json<Pod>> {
    let events = state.events.clone();
    let pod = blocking(move || {
        let pod = state.host.pod(&id)?;
        state.host.remove_pod(&pod, p.force)?;
        Ok::<_, ApiError>(pod)
    })
    .await?;
    let pod = Pod::from(pod);
    events.pod_removed(&pod.id);
    Ok(Json(pod))
}

/// The pod's console output (what its detached command wrote)
#[utoipa::path(get, path = "/v1/pods/{id}/log", tag = "pods",
    params(("id" = String, Path, description = "pod id, name or id prefix")),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody)))]
async fn get_pod_log(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let text = blocking(move || {
        let pod = state.host.pod(&id)?;
        let path = state.host.pod_log_path(&pod);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ApiError::internal(format!("{}: {e}", path.display()))),
        }
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_as_text_or_numbers() {
        let body: PodLimitsRequest = serde_json::from_value(serde_json::json!({
            "memory": "64M", "cpus": 0.5, "pids": 16, "maxproc": 20
        }))
        .unwrap();
        let l = limits_of(Some(body)).unwrap();
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.cpus, Some(0.5));
        assert_eq!((l.pids, l.maxproc, l.disk), (Some(16), Some(20), None));
        let body: PodLimitsRequest =
            serde_json::from_value(serde_json::json!({"memory": 8388608, "cpus": "2"})).unwrap();
        let l = limits_of(Some(body)).unwrap();
        assert_eq!(l.memory, Some(8 << 20));
        assert!(limits_of(None).unwrap().is_empty());
        let bad: PodLimitsRequest =
            serde_json::from_value(serde_json::json!({"memory": "10X"})).unwrap();
        assert!(limits_of(Some(bad)).is_err());
        assert!(
            serde_json::from_value::<PodLimitsRequest>(serde_json::json!({"swap": 1})).is_err()
        );
    }
}
