//! `/v1/hosts`: a jetpack host of the fleet as the API shows it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One jetpack server of the fleet (one on a lone host; one per server
/// when several share PostgreSQL).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub name: String,
    /// `up`, `draining` (takes no new work) or `down` (silent for
    /// `host.down` seconds)
    pub status: String,
    pub api_url: String,
    pub hangar_url: String,
    /// Its root dataset, or the dir driver's folder
    pub pool: String,
    /// Jobs it runs at once
    pub capacity: u32,
    pub version: String,
    /// Instances docked at its hangar at its last heartbeat
    pub instances: u64,
    /// Its pods at its last heartbeat
    pub pods: u64,
    /// The hypervisors it launches instances with (none without the hypervisor base)
    #[serde(default)]
    pub launch: Vec<String>,
    /// Instances jetpack launched that run there
    #[serde(default)]
    pub launched: u64,
    /// Its memory in MiB: the most one launch may have there (0: not said)
    #[serde(default)]
    pub memory_mib: u64,
    /// Its cpus: the most one launch may have there (0: not said)
    #[serde(default)]
    pub cpus: u32,
    /// RFC 3339
    pub started: String,
    /// Seconds since its last heartbeat (the store's clock)
    pub silent_seconds: f64,
    /// The server that answered
    #[serde(rename = "self")]
    pub is_self: bool,
}
