//! The wire shapes of `/v1/instances`: the API's own, made from the
//! fleet's `InstanceView`s and readings, and the PATCH body.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::api::{time, ApiError, ApiResult};
use crate::hangar::fleet::{self, rfc3339_ms, InstanceView, StatsSample, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Connected,
    Disconnected,
    Connecting,
    /// Known from before a server restart, not seen since
    Unknown,
}

impl From<Status> for InstanceStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Connected => InstanceStatus::Connected,
            Status::Disconnected => InstanceStatus::Disconnected,
            Status::Connecting => InstanceStatus::Connecting,
            Status::Unknown => InstanceStatus::Unknown,
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

impl From<&StatsSample> for StatsReading {
    fn from(s: &StatsSample) -> Self {
        StatsReading {
            at: rfc3339_ms(s.at_ms),
            // The fleet keeps only documents that parsed as arrays.
            stats: serde_json::from_str(&s.json).unwrap_or(serde_json::Value::Null),
        }
    }
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

impl InstanceSummary {
    pub(super) fn count(&mut self, status: Status, panicked: bool) {
        match status {
            Status::Connected => self.connected += 1,
            Status::Disconnected => self.disconnected += 1,
            Status::Connecting => self.connecting += 1,
            Status::Unknown => self.unknown += 1,
        }
        self.panicked += usize::from(panicked);
        self.total += 1;
    }
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    /// 1-64 of `A-Za-z0-9._-`, not only hex digits and dashes (that reads as an id), unique
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub alias: Option<Option<String>>,
    /// Up to 1024 characters
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
}

/// Tells a field given as `null` (Some(None)) from one left out (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl InstancePatch {
    pub(super) fn check(&self) -> ApiResult<()> {
        if let Some(Some(alias)) = &self.alias {
            fleet::check_alias(alias).map_err(ApiError::bad_request)?;
        }
        if let Some(Some(description)) = &self.description {
            fleet::check_description(description).map_err(ApiError::bad_request)?;
        }
        Ok(())
    }

    /// The names after this patch, from the current ones.
    pub(super) fn apply(
        self,
        alias: Option<String>,
        description: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let description = match self.description {
            None => description,
            // An empty description is no description.
            Some(d) => d.filter(|d| !d.is_empty()),
        };
        (self.alias.unwrap_or(alias), description)
    }
}

impl From<InstanceView> for Instance {
    fn from(v: InstanceView) -> Self {
        Instance {
            id: v.id,
            alias: v.alias,
            description: v.description,
            status: v.status.into(),
            panicked: v.panicked,
            tag: v.tag,
            version: v.version,
            service: v.service,
            image_id: v.image_id,
            nacl_id: v.nacl_id,
            uplink_id: v.uplink_id,
            uplink_url: v.uplink_url,
            addresses: v.addresses,
            devices: v.devices,
            arch: v.arch,
            first_seen: time(v.first_seen),
            last_seen: time(v.last_seen),
            remote: v.remote,
        }
    }
}

pub(super) fn models(views: Vec<InstanceView>) -> Vec<Instance> {
    views.into_iter().map(Instance::from).collect()
}
