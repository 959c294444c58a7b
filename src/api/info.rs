//! `/v1/info`, `/v1/info/name` and `/v1/log`: who this server is and what
//! it said lately.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{time, wants_raw, ApiQuery, ApiResult, AppState, State};
pub use crate::model::info::{HangarInfo, Info, Name};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(get_info))
        .routes(routes!(get_name))
        .routes(routes!(get_log))
}

const FEATURES: &[&str] = &[
    "uplinks", "nacls", "snippets", "images", "jobs", "bases", "pods",
];

/// Server name, version, uptime and features
#[utoipa::path(get, path = "/v1/info", tag = "info", responses((status = 200, body = Info)))]
async fn get_info(state: State) -> Json<Info> {
    Json(Info {
        name: state.name.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: "1.0".into(),
        uptime: state.started.elapsed().as_secs(),
        started: time(state.started_at),
        tls: state.tls,
        auth: state.users.is_some(),
        hangar: HangarInfo {
            url: state.hangar_url.clone(),
            tls: state.hangar_tls,
        },
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
    })
}

/// The server's name
#[utoipa::path(get, path = "/v1/info/name", tag = "info", responses((status = 200, body = Name)))]
async fn get_name(state: State) -> Json<Name> {
    Json(Name {
        name: state.name.clone(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// At most this many of the newest lines (default: all kept)
    lines: Option<usize>,
}

/// The server's recent log lines (JSON array, or text with `Accept: text/plain`)
#[utoipa::path(get, path = "/v1/log", tag = "info", params(LogParams),
    responses((status = 200, body = Vec<String>), (status = 406, body = super::error::ErrorBody)))]
async fn get_log(
    state: State,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<LogParams>,
) -> ApiResult<Response> {
    let lines = state.log.recent(p.lines);
    if wants_raw(&headers, &["text/plain"])? {
        let mut text = lines.join("\n");
        text.push('\n');
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    Ok(Json(lines).into_response())
}
