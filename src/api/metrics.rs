//! `GET /metrics`: the server's figures for Prometheus (crate::metrics
//! makes them; this file only speaks HTTP), and the middleware that counts
//! every API request by route template. The route sits behind the API's
//! auth unless `metrics.auth = none`; `metrics.listen` serves it alone on
//! a plain-HTTP listener of its own (server/mod.rs binds it).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;

use super::{ApiError, ApiQuery, ApiResult, AppState, State};
use crate::metrics::instances::{Selection, StatLimits};
use crate::metrics::{Format, Scrape, Sources};

pub const PATH: &str = "/metrics";

#[derive(Debug, Default, Deserialize)]
pub struct MetricsParams {
    /// none | all; absent: up to `metrics.instances.max`
    instances: Option<String>,
}

async fn metrics(
    state: State,
    ApiQuery(p): ApiQuery<MetricsParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let selection = match p.instances.as_deref() {
        None => Selection::Capped,
        Some(s) => Selection::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("?instances= is none or all (it is {s:?})"))
        })?,
    };
    let config = state.host.config();
    let scrape = Scrape {
        instances: selection,
        cap: config.metrics.instances_max,
        stats: StatLimits {
            max_keys: config.metrics.stats_max,
            ..StatLimits::default()
        },
    };
    let sources = sources(&state);
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    // The store, a directory walk and every included instance's STATS:
    // off the async workers.
    let body = super::blocking(move || {
        crate::metrics::encode::encode(crate::metrics::collect::snapshot(&sources, &scrape), format)
            .map_err(|_| ApiError::internal("encoding the metrics failed"))
    })
    .await?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

/// The `/metrics` route alone; the caller puts it behind auth or not.
/// What a scrape (and the InfluxDB reporter) reads of the server.
pub(crate) fn sources(state: &AppState) -> Sources {
    Sources {
        fleet: state.fleet.clone(),
        catalog: state.catalog.clone(),
        data_dir: state.host.config().data_dir.clone(),
        started_at: state.started_at,
        mds_socket: state.host.mds_link().map(|l| l.socket().to_path_buf()),
        host: Some(state.host.clone()),
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(PATH, axum::routing::get(metrics))
}

/// The app of the `metrics.listen` listener: /metrics, with the API's
/// auth when `metrics.auth = api`.
pub fn listener_app(state: Arc<AppState>) -> Router {
    let router =
        routes().fallback(|| async { ApiError::not_found("this listener serves /metrics only") });
    let router = if state.host.config().metrics.auth {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::auth::require,
        ))
    } else {
        router
    };
    router.with_state(state)
}

/// Counts each request by its route's template (`MatchedPath`: never the
/// raw path, whose ids would make a series per resource), method and
/// status, and its latency until the response head.
pub async fn count(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route: Arc<str> = match req.extensions().get::<MatchedPath>() {
        Some(p) => Arc::from(p.as_str()),
        None => Arc::from("unmatched"),
    };
    let method = crate::metrics::figures::method_label(req.method().as_str());
    let response = next.run(req).await;
    crate::metrics::figures().api.request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
