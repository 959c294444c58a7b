//! `/v1/uplinks`: an uplink as the API shows it, and the body that
//! creates or replaces one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An uplink: where and how an image's instances dock (spec/uplink.md).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Uplink {
    pub id: String,
    pub name: String,
    /// `http://host:port` or `https://host:port` of a hangar
    pub url: String,
    /// Shared secret instances send as `key` at auth
    pub token: String,
    pub tag: Option<String>,
    /// NIC index (number) or MAC address (string)
    pub index: Option<serde_json::Value>,
    pub verify: bool,
    pub reboot: bool,
    pub ws_logging: bool,
    pub serialize_ct: bool,
    pub certs: Option<String>,
    /// Milliseconds between STATS messages; 0 = only on request
    pub send_stats: u64,
    pub created: String,
    pub updated: String,
}

/// What a client sends to create or replace an uplink.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UplinkRequest {
    pub name: String,
    pub url: String,
    /// Omitted: a random one is made (or, on PUT, the old one is kept)
    pub token: Option<String>,
    pub tag: Option<String>,
    pub index: Option<serde_json::Value>,
    pub verify: Option<bool>,
    pub reboot: Option<bool>,
    pub ws_logging: Option<bool>,
    pub serialize_ct: Option<bool>,
    pub certs: Option<String>,
    pub send_stats: Option<u64>,
    /// Ignored when it equals the path's id (clients echo objects back)
    pub id: Option<String>,
}
