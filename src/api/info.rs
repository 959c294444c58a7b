//! `/v1/info`, `/v1/info/name` and `/v1/log`: who this server is and what
//! it said lately.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{time, wants_raw, ApiQuery, ApiResult, AppState, State};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(get_info))
        .routes(routes!(get_name))
        .routes(routes!(get_log))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Info {
    /// Server name (`--name`)
    pub name: String,
    /// jetpack version
    pub version: String,
    /// The REST API version this server follows (Mothership API)
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Seconds since start
    pub uptime: u64,
    /// When the server started (RFC 3339)
    pub started: String,
    /// Whether the API is served over TLS
    pub tls: bool,
    /// Whether the API asks for credentials
    pub auth: bool,
    /// The hangar instances dock to
    pub hangar: HangarInfo,
    /// What this server can do
    pub features: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HangarInfo {
    pub url: String,
    pub tls: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Name {
    pub name: String,
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
