//! `/v1/info` and `/v1/info/name`: who the server is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
