//! `/v1/jobs`: long operations, their state, their log (streamed while
//! they run) and cancelling them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::forward::FromPeer;
use super::{blocking, time, ApiQuery, ApiResult, AppState, ListParams, State};
use crate::hosts::job_log::JobLog;
pub use crate::model::jobs::Job;
use crate::store::jobs::{JobRow, JOBS};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_jobs))
        .routes(routes!(get_job, cancel_job))
        .routes(routes!(get_job_log))
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            log_url: format!("/v1/jobs/{}/log", r.id),
            id: r.id.to_string(),
            kind: r.kind,
            target: r.target,
            state: r.state,
            progress: r.progress,
            result: r.result,
            error: r.error,
            created: time(r.created_at),
            started: r.started_at.map(time),
            finished: r.finished_at.map(time),
            host: r.host,
        }
    }
}

/// List parameters plus filters (serde's flatten cannot carry numbers
/// through a query string, so the list fields are repeated).
#[derive(Debug, Default, Deserialize)]
struct JobListParams {
    q: Option<String>,
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
    state: Option<String>,
    kind: Option<String>,
}

/// List jobs (newest first)
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListParams,
        ("state" = Option<String>, Query, description = "only jobs in this state"),
        ("kind" = Option<String>, Query, description = "only jobs of this kind")),
    responses((status = 200, body = Vec<Job>), (status = 400, body = ErrorBody)))]
async fn list_jobs(
    state: State,
    ApiQuery(p): ApiQuery<JobListParams>,
) -> ApiResult<Json<Vec<Job>>> {
    let list = ListParams {
        q: p.q,
        sort: p.sort,
        limit: p.limit,
        offset: p.offset,
    };
    let mut q = list.query(&JOBS)?;
    if let Some(s) = p.state {
        q.filters.push(("state", s));
    }
    if let Some(k) = p.kind {
        q.filters.push(("kind", k));
    }
    let rows = blocking(move || state.jobs.list(&q)).await?;
    Ok(Json(rows.into_iter().map(Job::from).collect()))
}

/// Show a job
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id or a prefix of it")),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
async fn get_job(state: State, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    let row = blocking(move || state.jobs.get(&id)).await?;
    Ok(Json(row.into()))
}

/// Cancel a queued or running job
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id or a prefix of it")),
    responses((status = 202, body = Job), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "it has finished")))]
async fn cancel_job(state: State, Path(id): Path<String>) -> ApiResult<(StatusCode, Json<Job>)> {
    let row = blocking(move || state.jobs.cancel(&id)).await?;
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}

/// A job's log as text; while the job runs, the answer streams until it ends
#[utoipa::path(get, path = "/v1/jobs/{id}/log", tag = "jobs",
    params(("id" = String, Path, description = "job id or a prefix of it")),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody)))]
async fn get_job_log(
    state: State,
    from_peer: Option<Extension<FromPeer>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let jobs = state.jobs.clone();
    let row = blocking(move || jobs.get(&id)).await?;
    // Wherever the job runs, or comes to run: hosts::job_log reads it
    // here or from that host.
    let follow = JobLog::new(
        state.jobs.clone(),
        state.hosts.clone(),
        row.id,
        from_peer.is_some(),
    );
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        f.next()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), f))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}
