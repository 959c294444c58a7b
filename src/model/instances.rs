//! `/v1/instances`: an instance, its detail, stats, events and panics as
//! the API shows them, the PATCH body, and what asks for a deploy or an
//! upgrade.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Connected,
    Disconnected,
    Connecting,
    /// Known from before a server restart, not seen since
    Unknown,
    /// Launched by jetpack, its hypervisor running, not docked yet
    Launching,
    /// Launched by jetpack, its pod stopped
    Stopped,
}

impl InstanceStatus {
    /// The status as the JSON spells it (tables show it so).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Connected => "connected",
            InstanceStatus::Disconnected => "disconnected",
            InstanceStatus::Connecting => "connecting",
            InstanceStatus::Unknown => "unknown",
            InstanceStatus::Launching => "launching",
            InstanceStatus::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// What it authenticates with: its SMBIOS UUID (32 hex digits) or a MAC
    pub id: String,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub status: InstanceStatus,
    /// It reported a panic since the server started
    pub panicked: bool,
    /// From IDENT (else the UPLINK echo)
    pub tag: Option<String>,
    /// IncludeOS version (IDENT)
    pub version: Option<String>,
    /// Service name (IDENT)
    pub service: Option<String>,
    /// SHA-1 of the image it runs, once known (after a live update)
    pub image_id: Option<String>,
    /// The NaCl that image was built with, when the image is in the catalog
    pub nacl_id: Option<String>,
    /// The uplink whose token it authenticated with
    pub uplink_id: Option<String>,
    /// The uplink URL it reports (UPLINK echo)
    pub uplink_url: Option<String>,
    /// Addresses of its network stacks (IDENT.net)
    pub addresses: Vec<String>,
    pub devices: Vec<String>,
    pub arch: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// Address and port its current or last dock came from
    pub remote: Option<String>,
    /// The jetpack host whose hangar holds (or last held) its dock, when several share the fleet's store
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How jetpack runs it, when jetpack launched it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched: Option<Launched>,
    /// The jetpack host whose pod runs it, when jetpack launched it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_on: Option<String>,
}

/// A launched instance's pod and hypervisor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Launched {
    pub pod_id: String,
    /// qemu | bhyve
    pub hypervisor: String,
    /// MiB
    pub memory: u64,
    pub cpus: u32,
    /// no | on-failure | always
    pub restart: String,
    /// `[ADDR:]HOSTPORT:PORT[/PROTO]` forwards from the host
    pub publish: Vec<String>,
    /// The catalog image its pod boots (changed by an acknowledged deploy), or the file it was launched from
    pub image: String,
}

/// `POST /v1/instances`: launch an image in a pod of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchRequest {
    /// Image id, id prefix or tag (a multiboot ELF); or leave out and give `kernel`
    pub image_id: Option<String>,
    /// A kernel file in the server's `launch.kernels` folder (the Linux boot path)
    pub kernel: Option<String>,
    /// An initrd file in the same folder, with `kernel`
    pub initrd: Option<String>,
    /// The kernel's or the image's command line
    pub append: Option<String>,
    /// qemu | bhyve (the host's by default)
    pub hypervisor: Option<String>,
    /// MiB (`launch.memory` by default)
    pub memory: Option<u64>,
    pub cpus: Option<u32>,
    pub alias: Option<String>,
    /// no (default) | on-failure | always
    pub restart: Option<String>,
    /// `[ADDR:]HOSTPORT:PORT[/tcp|udp]`
    #[serde(default)]
    pub publish: Vec<String>,
    /// The instance network's gateway, CIDR (10.0.0.1/24 by default)
    pub net: Option<String>,
    /// Launches with the same spread tag go to different hosts, as far as there are hosts (several hosts on one store; else the fewest launched instances decide)
    pub spread: Option<String>,
    /// The only host that may launch it (several hosts on one store)
    pub host: Option<String>,
}

/// One instance with its full last IDENT, UPLINK echo and latest STATS.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetail {
    #[serde(flatten)]
    pub instance: Instance,
    #[schema(value_type = Option<Object>)]
    pub ident: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub uplink: Option<serde_json::Value>,
    pub latest_stats: Option<StatsReading>,
}

/// One STATS document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsReading {
    /// When it arrived (RFC 3339, milliseconds)
    pub at: String,
    /// `[{name, value}]` as the instance sent it
    #[schema(value_type = Vec<Object>)]
    pub stats: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceStats {
    pub latest: Option<StatsReading>,
    /// The ones before it, oldest first
    pub history: Vec<StatsReading>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsRequested {
    /// Asked for; the instance did not answer in time (see GET .../stats later)
    pub requested: bool,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceSummary {
    pub connected: usize,
    pub disconnected: usize,
    pub connecting: usize,
    pub unknown: usize,
    /// Instances that reported a panic (whatever their status)
    pub panicked: usize,
    pub total: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceEvent {
    /// RFC 3339, milliseconds
    pub at: String,
    /// docked, disconnected, ident, panicked, deploy, deployed, ...
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstancePanic {
    /// `panic_<RFC 3339 time>.txt`
    pub id: String,
    pub created: String,
    /// Bytes of text
    pub size: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstancePanicText {
    pub id: String,
    pub created: String,
    /// The system log of the boot that panicked
    pub text: String,
}

/// PATCH body: a field left out is kept; `null` clears it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    /// 1-64 of `A-Za-z0-9._-`, not only hex digits and dashes (that reads as an id), unique
    // Left out when None (kept), written as null when Some(None) (cleared).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub alias: Option<Option<String>>,
    /// Up to 1024 characters
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
}

/// A deploy's options, in the query or a JSON body (the body wins).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeployRequest {
    /// Deploy even when the image's uplink URL differs from the instance's or is unknown [default: false]
    pub force: Option<bool>,
    /// Seconds from sending the image to the instance being back with it, 1..=3600 [default: 120]
    pub timeout: Option<u64>,
}

/// An upgrade: which builder, and what may differ from the instance's own.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The builder to build with
    pub builder_id: String,
    /// NaCl [default: the one of the image the instance runs]
    pub nacl_id: Option<String>,
    /// Service [default: the one the instance reports]
    pub service: Option<String>,
    /// Deploy even if the deploy check warns
    pub force: Option<bool>,
    /// Seconds for the instance to come back with the new image [default: 120]
    pub timeout: Option<u64>,
}

/// Tells a field given as `null` (Some(None)) from one left out (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
