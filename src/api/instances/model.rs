//! The wire shapes of `/v1/instances` (defined in `model::instances`,
//! shared with the client): here, how they are made from the fleet's
//! `InstanceView`s and readings, and the PATCH body's checks.

pub use crate::model::instances::*;

use crate::api::{time, ApiError, ApiResult};
use crate::hangar::fleet::{self, rfc3339_ms, InstanceView, StatsSample, Status};

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

impl From<&StatsSample> for StatsReading {
    fn from(s: &StatsSample) -> Self {
        StatsReading {
            at: rfc3339_ms(s.at_ms),
            // The fleet keeps only documents that parsed as arrays.
            stats: serde_json::from_str(&s.json).unwrap_or(serde_json::Value::Null),
        }
    }
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
            host: v.host,
            launched: None,
            launched_on: None,
        }
    }
}

pub(super) fn models(views: Vec<InstanceView>) -> Vec<Instance> {
    views.into_iter().map(Instance::from).collect()
}
