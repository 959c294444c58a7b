//! What a pod's supervisor and the host do with a pod beyond running it
//! once: its restart policy (and how often it was restarted), whether the
//! host starts it at boot (`autostart`), and the host ports forwarded to
//! it (`publish`). Columns of the pod's row; read with the row, written at
//! insert and by the supervisor here.

use super::sql::{params, DbResult, Row};
use serde::Serialize;

use super::{corrupt, Store, StoreError};
use crate::names::PodId;
use crate::net::publish::PublishSpec;
use crate::runtime::restart::RestartPolicy;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodPolicy {
    pub restart: RestartPolicy,
    pub autostart: bool,
    pub publish: Vec<PublishSpec>,
    /// Its own network stack on FreeBSD (VNET); Linux cells always have one.
    pub vnet: bool,
}

/// Why a pod's policy was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Restart(#[from] crate::runtime::restart::UnknownRestartPolicy),
    #[error("publish: {0}")]
    Publish(#[from] crate::net::publish::PublishParseError),
    #[error("publish: {0} twice")]
    PublishedTwice(String),
}

impl PodPolicy {
    /// The policy from its words (`--restart`, `--autostart`, `--publish`,
    /// or the API's fields); a host port and protocol forwarded twice is
    /// refused here rather than when the pod starts.
    pub fn parse(
        restart: Option<&str>,
        autostart: bool,
        publish: &[String],
        vnet: bool,
    ) -> Result<PodPolicy, PolicyError> {
        let restart = restart.map(str::parse).transpose()?.unwrap_or_default();
        let mut specs: Vec<PublishSpec> = Vec::new();
        for word in publish {
            let spec: PublishSpec = word.parse()?;
            if spec.host_port != 0
                && specs
                    .iter()
                    .any(|s| s.host_port == spec.host_port && s.proto == spec.proto)
            {
                return Err(PolicyError::PublishedTwice(format!(
                    "{}/{}",
                    spec.host_port, spec.proto
                )));
            }
            specs.push(spec);
        }
        Ok(PodPolicy {
            restart,
            autostart,
            publish: specs,
            vnet,
        })
    }

    pub(super) fn from_row(r: &Row) -> DbResult<PodPolicy> {
        let restart: String = r.get("restart")?;
        let publish: String = r.get("publish")?;
        Ok(PodPolicy {
            restart: restart.parse().map_err(corrupt)?,
            autostart: r.get("autostart")?,
            publish: serde_json::from_str(&publish).map_err(corrupt)?,
            vnet: r.get("vnet")?,
        })
    }

    pub(super) fn publish_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(&self.publish).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

impl Store {
    /// Records that a running pod's command ended with `exit_code` and is
    /// run again: the pod stays running, its count of restarts grows.
    pub fn pod_restarted(&self, id: &PodId, exit_code: Option<i32>) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE pods SET restarts = restarts + 1, exit_code = ?2 WHERE id = ?1 AND state = 'running'",
            params![id.as_str(), exit_code],
        )?;
        Ok(())
    }
}
