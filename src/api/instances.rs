//! `/v1/instances`: the IncludeOS instances the hangar knows (Mothership's
//! resource). Lists, summaries and details are read from the fleet's
//! memory; alias and description are set through it; deletes forget an
//! instance and what is stored of it; logs (also streamed), stats (also
//! asked for on demand), event history and panics are the fleet's; deploys
//! and upgrades are the hangar's jobs (hangar/deploy.rs, hangar/upgrade.rs).
//! This file translates HTTP only: query strings into the fleet's
//! `InstanceQuery`, its `InstanceView`s into the API's own wire shapes.
//!
//! - `model`: those wire shapes
//! - `deploy`: the deploy and upgrade routes
//! - `launch`: launching, the console, stop, start and restart

mod deploy;
mod launch;
mod model;

pub use launch::launch_result;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{
    blocking, time, unknown_sort, wants_raw, ApiError, ApiJson, ApiQuery, ApiResult, AppState,
    ListParams, State,
};
use crate::hangar::fleet::{rfc3339_ms, tail_start, FleetError, InstanceQuery, InstanceView, Sort};
use crate::hangar::token::InstanceId;
use model::*;

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    let r = r
        .routes(routes!(instance_summary))
        .routes(routes!(list_instances, delete_instances))
        .routes(routes!(get_instance, patch_instance, delete_instance))
        .routes(routes!(get_logs))
        .routes(routes!(get_stats, request_stats))
        .routes(routes!(get_history))
        .routes(routes!(list_panics))
        .routes(routes!(get_panic));
    launch::routes(deploy::routes(r))
}

/// How many instances a list matched before `limit` and `offset`.
const TOTAL_COUNT: &str = "x-total-count";

/// How often a followed log looks for new bytes.
const LOG_POLL: Duration = Duration::from_millis(200);
/// How long `POST .../stats` waits for the instance's answer.
const STATS_WAIT: Duration = Duration::from_secs(5);
const STATS_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InstanceListParams {
    /// Search: a case-insensitive substring of the id, alias, description, tag, version, service, image id, addresses or devices
    q: Option<String>,
    /// Only instances with this status: connected, disconnected, connecting, unknown, launching (launched, not docked yet) or stopped (launched, its pod stopped)
    status: Option<String>,
    /// Only instances that did (true) or did not (false) report a panic
    panicked: Option<bool>,
    /// Only instances whose dock this jetpack host's hangar holds (or last held)
    host: Option<String>,
    /// Order by id (the default), alias, status, version, service, tag, imageId, firstSeen or lastSeen; `-` reverses
    sort: Option<String>,
    /// At most this many (1..=1000)
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteParams {
    /// Instances to forget, comma-separated (ids, aliases or id prefixes); all must exist
    ids: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// Only the bytes after this offset (an `X-Log-Offset` from before)
    since: Option<u64>,
    /// Only the last N lines
    tail: Option<usize>,
    /// Keep the answer open and send new bytes as they arrive
    #[serde(default)]
    follow: bool,
}

/// A status as lists show it: the fleet's, or a launched instance's.
fn parse_listed_status(s: &str) -> ApiResult<InstanceStatus> {
    const ALL: [InstanceStatus; 6] = [
        InstanceStatus::Connected,
        InstanceStatus::Disconnected,
        InstanceStatus::Connecting,
        InstanceStatus::Unknown,
        InstanceStatus::Launching,
        InstanceStatus::Stopped,
    ];
    ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!("status {s:?}: use one of {}", names.join(", ")))
    })
}

/// List instances (by id unless sorted otherwise)
#[utoipa::path(get, path = "/v1/instances", tag = "instances", params(InstanceListParams),
    responses((status = 200, body = Vec<Instance>,
        headers(("X-Total-Count" = usize, description = "instances that matched before limit and offset"))),
        (status = 400, body = ErrorBody)))]
async fn list_instances(
    state: State,
    ApiQuery(p): ApiQuery<InstanceListParams>,
) -> ApiResult<impl IntoResponse> {
    let status = p.status.as_deref().map(parse_listed_status).transpose()?;
    let list = ListParams {
        q: p.q,
        sort: p.sort,
        limit: p.limit,
        offset: p.offset,
    };
    let query = InstanceQuery {
        host: p.host,
        ..instance_query(p.panicked, list)?
    };
    let (list, total) = blocking(move || state.launches.list(query, status)).await?;
    Ok(([(TOTAL_COUNT, total.to_string())], Json(list)))
}

/// The fleet's query for a list's parameters: the sort is checked first,
/// then the bounds every list has.
fn instance_query(panicked: Option<bool>, list: ListParams) -> ApiResult<InstanceQuery> {
    let sort = match list.sort_field() {
        None => Sort::default(),
        Some((field, desc)) => {
            Sort::parse(field, desc).ok_or_else(|| unknown_sort(field, &Sort::NAMES))?
        }
    };
    list.check()?;
    Ok(InstanceQuery {
        q: list.q,
        status: None,
        panicked,
        host: None,
        sort,
        limit: list.limit,
        offset: list.offset.unwrap_or(0),
    })
}

/// Count instances per status
#[utoipa::path(get, path = "/v1/instances/summary", tag = "instances",
    responses((status = 200, body = InstanceSummary)))]
async fn instance_summary(state: State) -> Json<InstanceSummary> {
    Json(state.fleet.summary())
}

/// Show an instance, with its last IDENT, UPLINK echo and STATS
#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = InstanceDetail), (status = 400, body = ErrorBody, description = "ambiguous prefix"),
        (status = 404, body = ErrorBody)))]
async fn get_instance(state: State, Path(id): Path<String>) -> ApiResult<Json<InstanceDetail>> {
    let detail = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        let (mut view, ident, uplink, stats) = state.fleet.with(&id, |l| {
            (
                InstanceView::of(&id, l),
                l.ident.clone(),
                l.uplink.clone(),
                l.stats.as_ref().map(StatsReading::from),
            )
        })?;
        state.fleet.add_nacls(std::slice::from_mut(&mut view))?;
        let mut instance = [Instance::from(view)];
        state.launches.annotate(&mut instance)?;
        let [instance] = instance;
        Ok::<_, ApiError>(InstanceDetail {
            instance,
            ident,
            uplink,
            latest_stats: stats,
        })
    })
    .await?;
    Ok(Json(detail))
}

/// Set an instance's alias or description (`null` clears; left out keeps)
#[utoipa::path(patch, path = "/v1/instances/{id}", tag = "instances", request_body = InstancePatch,
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "another instance has this alias")))]
async fn patch_instance(
    state: State,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<InstancePatch>,
) -> ApiResult<Json<Instance>> {
    patch.check()?;
    let instance = blocking(move || {
        let fleet = &state.fleet;
        let id = fleet.resolve(&id)?;
        fleet.update_names(&id, |alias, description| patch.apply(alias, description))?;
        fleet.view(&id)
    })
    .await?;
    Ok(Json(instance.into()))
}

/// Forget an instance and what is stored of it (panics included); its session, if any, is closed
#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_instance(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let gone = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        state.launches.forget(&id)?;
        Ok::<_, ApiError>(state.fleet.forget_all(std::slice::from_ref(&id))?)
    })
    .await?;
    match gone.into_iter().next() {
        Some(view) => Ok(Json(Instance::from(view)).into_response()),
        None => Err(ApiError::not_found("the instance was deleted meanwhile")),
    }
}

/// Forget several instances (`?ids=a,b`); if any is unknown, none is deleted
#[utoipa::path(delete, path = "/v1/instances", tag = "instances", params(DeleteParams),
    responses((status = 200, body = Vec<Instance>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_instances(
    state: State,
    ApiQuery(p): ApiQuery<DeleteParams>,
) -> ApiResult<Json<Vec<Instance>>> {
    let refs: Vec<String> = p
        .ids
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if refs.is_empty() {
        return Err(ApiError::bad_request(
            "name the instances to delete: ?ids=ID,ALIAS,...",
        ));
    }
    let gone = blocking(move || {
        let mut ids: Vec<InstanceId> = Vec::with_capacity(refs.len());
        for r in &refs {
            let id = state.fleet.resolve(r)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for id in &ids {
            state.launches.forget(id)?;
        }
        Ok::<_, ApiError>(state.fleet.forget_all(&ids)?)
    })
    .await?;
    Ok(Json(models(gone)))
}

const LOG_OFFSET: HeaderName = HeaderName::from_static("x-log-offset");

/// The instance's recent LOG output as text (bytes as sent); `follow` streams new output
#[utoipa::path(get, path = "/v1/instances/{id}/logs", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"), LogParams),
    responses((status = 200, body = String, content_type = "text/plain",
            headers(("X-Log-Offset" = u64, description = "the offset after these bytes: ?since= it next time"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_logs(
    state: State,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<LogParams>,
) -> ApiResult<Response> {
    let fleet = state.fleet.clone();
    let id = fleet.resolve(&id)?;
    let (mut bytes, offset) = fleet.with(&id, |l| l.log_since(p.since.unwrap_or(0)))?;
    if let Some(n) = p.tail {
        bytes.drain(..tail_start(&bytes, n));
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        (LOG_OFFSET, HeaderValue::from(offset)),
    ];
    if !p.follow {
        return Ok((headers, bytes).into_response());
    }
    let first = futures_util::stream::iter(
        (!bytes.is_empty()).then(|| Ok::<_, std::io::Error>(Bytes::from(bytes))),
    );
    let more =
        futures_util::stream::unfold((fleet, id, offset), |(fleet, id, offset)| async move {
            loop {
                tokio::time::sleep(LOG_POLL).await;
                // A deleted instance ends the stream; a client that went away
                // drops it.
                let (bytes, next) = fleet.with(&id, |l| l.log_since(offset)).ok()?;
                if !bytes.is_empty() {
                    return Some((Ok(Bytes::from(bytes)), (fleet, id, next)));
                }
            }
        });
    use futures_util::StreamExt;
    Ok((headers, Body::from_stream(first.chain(more))).into_response())
}

/// The latest STATS and the ones before it
#[utoipa::path(get, path = "/v1/instances/{id}/stats", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = InstanceStats), (status = 404, body = ErrorBody)))]
async fn get_stats(state: State, Path(id): Path<String>) -> ApiResult<Json<InstanceStats>> {
    let id = state.fleet.resolve(&id)?;
    let stats = state.fleet.with(&id, |l| InstanceStats {
        latest: l.stats.as_ref().map(StatsReading::from),
        history: l.stats_history.iter().map(StatsReading::from).collect(),
    })?;
    Ok(Json(stats))
}

/// Ask a docked instance for STATS now: 200 with them when they come within
/// 5 s, else 202 (they will show in GET .../stats)
#[utoipa::path(post, path = "/v1/instances/{id}/stats", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = StatsReading), (status = 202, body = StatsRequested),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not docked, or its queue is full")))]
async fn request_stats(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let fleet = &state.fleet;
    let id = fleet.resolve(&id)?;
    let before = fleet.request_stats(&id)?;
    let deadline = Instant::now() + STATS_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(STATS_POLL).await;
        if let Some(sample) = fleet.stats_after(&id, before)? {
            return Ok(Json(StatsReading::from(&sample)).into_response());
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(StatsRequested { requested: true }),
    )
        .into_response())
}

/// The instance's recent events (docked, disconnected, ident, panicked, deploy...), oldest first
#[utoipa::path(get, path = "/v1/instances/{id}/history", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Vec<InstanceEvent>), (status = 404, body = ErrorBody)))]
async fn get_history(state: State, Path(id): Path<String>) -> ApiResult<Json<Vec<InstanceEvent>>> {
    let id = state.fleet.resolve(&id)?;
    let events = state.fleet.with(&id, |l| {
        l.events
            .iter()
            .map(|e| InstanceEvent {
                at: rfc3339_ms(e.at_ms),
                event: e.event.to_string(),
                detail: e.detail.clone(),
            })
            .collect()
    })?;
    Ok(Json(events))
}

/// The panics the instance reported, newest first
#[utoipa::path(get, path = "/v1/instances/{id}/panics", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix")),
    responses((status = 200, body = Vec<InstancePanic>), (status = 404, body = ErrorBody)))]
async fn list_panics(state: State, Path(id): Path<String>) -> ApiResult<Json<Vec<InstancePanic>>> {
    let rows = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        state.fleet.panics(&id)
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| InstancePanic {
                size: r.text.len(),
                id: r.id,
                created: time(r.created_at),
            })
            .collect(),
    ))
}

/// A panic's text: JSON, or the raw text with `Accept: text/plain`
#[utoipa::path(get, path = "/v1/instances/{id}/panics/{panicId}", tag = "instances",
    params(("id" = String, Path, description = "instance id, alias or id prefix"),
        ("panicId" = String, Path, description = "panic id, e.g. panic_2024-01-02T03:04:05.678Z.txt")),
    responses((status = 200, content((InstancePanicText = "application/json"), (String = "text/plain"))),
        (status = 404, body = ErrorBody), (status = 406, body = ErrorBody)))]
async fn get_panic(
    state: State,
    headers: HeaderMap,
    Path((id, panic_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let raw = wants_raw(&headers, &["text/plain"])?;
    if panic_id.is_empty() || panic_id.len() > 128 {
        return Err(ApiError::not_found(format!(
            "no panic {:?}",
            panic_id.chars().take(80).collect::<String>()
        )));
    }
    let row = blocking(move || {
        let id = state.fleet.resolve(&id)?;
        state.fleet.panic(&id, &panic_id).map_err(|e| match e {
            FleetError::NotFound(_) => {
                ApiError::not_found(format!("instance {id} has no panic {panic_id:?}"))
            }
            e => e.into(),
        })
    })
    .await?;
    if raw {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            row.text,
        )
            .into_response());
    }
    Ok(Json(InstancePanicText {
        id: row.id,
        created: time(row.created_at),
        text: row.text,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hangar::fleet::query::tests::TestFleet;
    use crate::hangar::fleet::Status;
    use crate::hangar::frame::Code;

    /// What a list answers for `list`, as the handler makes it. Blocking.
    fn select(
        t: &TestFleet,
        status: Option<Status>,
        panicked: Option<bool>,
        list: ListParams,
    ) -> ApiResult<Vec<Instance>> {
        let mut query = instance_query(panicked, list)?;
        query.status = status;
        Ok(models(t.fleet.query(&query)?))
    }

    fn search(q: &str) -> ListParams {
        ListParams {
            q: Some(q.into()),
            ..Default::default()
        }
    }

    fn sorted(sort: &str) -> ListParams {
        ListParams {
            sort: Some(sort.into()),
            ..Default::default()
        }
    }

    /// The search, filters and order themselves are the fleet's
    /// (hangar/fleet/query.rs); here, their parameters and answer.
    #[test]
    fn lists_translate_parameters_and_answer_the_api_shape() {
        let t = TestFleet::new();
        t.dock("aaaa", r#"{"version":"v0.14"}"#);
        let image = "ff00".repeat(10);
        let (c, _) = t.dock(
            "cccc",
            &format!(r#"{{"version":"v0.15","binary":"{image}","tag":"blue"}}"#),
        );
        t.send(&c, Code::Panic, "PANIC");
        let ids = |list: ListParams| -> Vec<String> {
            select(&t, None, None, list)
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect()
        };
        assert_eq!(ids(sorted("-version")), ["cccc", "aaaa"]);
        let page = ListParams {
            sort: Some("version".into()),
            offset: Some(1),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(ids(page), ["cccc"]);
        for bad in [
            sorted("uptime"),
            ListParams {
                limit: Some(0),
                ..Default::default()
            },
        ] {
            let e = select(&t, None, None, bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        let listed = select(&t, None, None, search("cccc")).unwrap();
        let c = &listed[0];
        assert_eq!(
            (
                c.tag.as_deref(),
                c.image_id.as_deref(),
                c.status,
                c.panicked
            ),
            (
                Some("blue"),
                Some(image.as_str()),
                InstanceStatus::Connected,
                true
            )
        );
    }

    #[test]
    fn statuses_parse_or_are_refused() {
        assert_eq!(
            parse_listed_status("unknown").unwrap(),
            InstanceStatus::Unknown
        );
        assert_eq!(
            parse_listed_status("launching").unwrap(),
            InstanceStatus::Launching
        );
        let e = parse_listed_status("up").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("connected, disconnected"),
            "{}",
            e.message
        );
    }

    #[test]
    fn patches_keep_absent_fields_and_clear_null_ones() {
        let parse = |text: &str| serde_json::from_str::<InstancePatch>(text);
        let keep = (Some("edge".to_string()), Some("rack 4".to_string()));
        let p = parse("{}").unwrap();
        assert_eq!(p.apply(keep.0.clone(), keep.1.clone()), keep);
        let p = parse(r#"{"alias": null}"#).unwrap();
        assert_eq!(
            p.apply(keep.0.clone(), keep.1.clone()),
            (None, keep.1.clone())
        );
        let p = parse(r#"{"alias": "core", "description": ""}"#).unwrap();
        assert!(p.check().is_ok());
        assert_eq!(
            p.apply(keep.0.clone(), keep.1.clone()),
            (Some("core".into()), None)
        );
        assert!(
            parse(r#"{"alias": "x", "name": "y"}"#).is_err(),
            "unknown fields"
        );
        assert!(parse(r#"{"alias": 3}"#).is_err());
        let bad = parse(r#"{"alias": "beef"}"#).unwrap();
        assert_eq!(bad.check().unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
