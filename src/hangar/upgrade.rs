//! Upgrade: rebuild the image an instance runs and live-update it with the
//! result, as one job. The build is planned before the job exists with the
//! instance's own uplink (the one it docked with) and tag, the NaCl of the
//! image it runs and the service it reports, unless the request names
//! others; then the job builds (in a build slot) and deploys (deploy.rs),
//! under the same one-deploy-per-instance rule as a plain deploy.

use std::sync::Arc;
use std::time::Duration;

use super::deploy::{self, DeployError};
use super::fleet::{Fleet, FleetError, IdentFields};
use crate::build::{BuildError, BuildRequest, Builders, Built, NaclInput};
use crate::catalog::Catalog;
use crate::jobs::Jobs;
use crate::store::jobs::JobRow;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("instance {0} did not dock with a stored uplink's token")]
    NoUplink(String),
    #[error("the NaCl of instance {0}'s image is not known: give naclId")]
    UnknownNacl(String),
    #[error("instance {0} reports no service: give service")]
    NoService(String),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// What an upgrade builds with, where it may differ from the instance's own.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The builder (id or prefix).
    pub builder: String,
    /// The NaCl; the one of the image the instance runs if none.
    pub nacl: Option<String>,
    /// The service; the one the instance reports if none.
    pub service: Option<String>,
    /// Deploy even if the deploy check warns.
    pub force: bool,
    /// For the instance to come back with the new image.
    pub timeout: Duration,
}

/// The parts an upgrade uses.
pub struct Upgrades {
    pub jobs: Arc<Jobs>,
    pub builders: Arc<Builders>,
    pub fleet: Arc<Fleet>,
    pub catalog: Arc<Catalog>,
}

/// How the caller wants a built image described in the job's result (the
/// API's image model); the deploy's result goes under `"deploy"`.
pub type Describe = fn(Built) -> Result<serde_json::Value, String>;

impl Upgrades {
    /// Checks and plans an upgrade of `instance` (id, alias or prefix) and
    /// submits it as a job. Blocking.
    pub fn submit(
        &self,
        instance: &str,
        req: UpgradeRequest,
        describe: Describe,
    ) -> Result<JobRow, UpgradeError> {
        let id = self.fleet.resolve(instance)?;
        let (status, uplink, tag, service, image) = self.fleet.with(&id, |l| {
            let f = IdentFields::of(l);
            (
                l.status,
                l.uplink_id.clone(),
                f.tag.map(str::to_string),
                f.service.map(str::to_string),
                l.image_id.clone(),
            )
        })?;
        if !status.can_deploy() {
            return Err(DeployError::NotDocked(id.to_string(), status.as_str()).into());
        }
        let uplink = uplink.ok_or_else(|| UpgradeError::NoUplink(id.to_string()))?;
        let nacl = match req.nacl {
            Some(n) => n,
            None => image
                .and_then(|i| self.catalog.image(&i).ok())
                .and_then(|i| i.nacl_id.map(String::from))
                .ok_or_else(|| UpgradeError::UnknownNacl(id.to_string()))?,
        };
        let service = req
            .service
            .or(service)
            .ok_or_else(|| UpgradeError::NoService(id.to_string()))?;
        let plan = self.builders.plan(BuildRequest {
            service,
            builder: req.builder,
            nacl: NaclInput::Stored(nacl),
            uplink: Some(uplink),
            tag,
            name: None,
        })?;
        let (builders, fleet, catalog) = (
            self.builders.clone(),
            self.fleet.clone(),
            self.catalog.clone(),
        );
        let (force, timeout) = (req.force, req.timeout);
        let target = id.to_string();
        deploy::submit_one(&self.jobs, &self.fleet, &id, |jobs| {
            let slots = Some(self.builders.build_slots());
            let job =
                jobs.submit_limited(deploy::UPGRADE, Some(target.clone()), slots, move |ctx| {
                    // Each step's error stays its own type (BuildError,
                    // DeployError, DeployRunError) up to the job runner.
                    let built = builders.build(&plan, ctx)?;
                    let image = built.image.id.clone();
                    let deploy = deploy::plan(&fleet, &catalog, &target, &image, force, timeout)?;
                    let deployed = deploy::run(&fleet, &catalog, &deploy, ctx)?;
                    let mut result = describe(built)?;
                    if let Some(fields) = result.as_object_mut() {
                        fields.insert("deploy".into(), deployed);
                    }
                    Ok(result)
                });
            job.map_err(|e| UpgradeError::Deploy(e.into()))
        })
    }
}
