//! Builds and builder prepares as the fleet's work. On one host a build
//! runs where it was asked for. When several hosts share the store, a
//! build is planned (checked) where it was asked for and queued with its
//! request resolved to ids; any host with a free build slot takes it
//! (`Jobs::claim`), plans it again and runs it, first bringing the
//! builder's base over if it lacks it (`BaseSource`: how is the hosts'
//! business). `affinity` names the only host that may take it. A prepare
//! is queued as its provider and bob; the host that takes it makes the
//! builder's base there (builds elsewhere bring it over).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{BuildError, BuildRequest, Builder, Builders, Built, NaclInput};
use crate::jobs::{JobContext, JobError, JobKind, Jobs, WorkError};
use crate::names::BaseId;
use crate::store::jobs::JobRow;

/// Turns what a build made into the job's result (the API's shape).
pub type BuildResultFn = fn(Built) -> Result<serde_json::Value, String>;

/// Turns what a prepare made (the builder, whether it existed) into the
/// job's result.
pub type PrepareResultFn = fn(Builder, bool) -> Result<serde_json::Value, String>;

/// A queued prepare's `spec`.
#[derive(Debug, Serialize, Deserialize)]
struct QueuedPrepare {
    provider: String,
    bob: String,
}

/// Where a base this host lacks comes from (another host of the fleet).
pub trait BaseSource: Send + Sync {
    /// Makes base `id` present here; logs what it does to `job`.
    fn ensure(&self, id: &BaseId, job: &JobContext) -> Result<(), WorkError>;
}

impl Builders {
    /// Checks a build and runs it here, or queues it for the fleet.
    pub fn submit(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        req: BuildRequest,
        affinity: Option<String>,
        result: BuildResultFn,
    ) -> Result<JobRow, BuildError> {
        let plan = self.plan(req)?;
        let target = Some(format!("{} {}", plan.service, plan.name.as_str()));
        if jobs.shared() {
            let spec = BuildRequest {
                service: plan.service.clone(),
                builder: plan.builder.row.id.to_string(),
                nacl: match &plan.nacl_id {
                    Some(id) => NaclInput::Stored(id.to_string()),
                    None => NaclInput::Text(plan.nacl.clone()),
                },
                uplink: Some(plan.uplink.id.to_string()),
                tag: plan.tag.clone(),
                name: Some(plan.name.to_string()),
            };
            let spec = serde_json::to_value(&spec)
                .map_err(|e| BuildError::Queue(format!("encoding the build: {e}")))?;
            return Ok(jobs.enqueue(JobKind::Build, target, spec, affinity)?);
        }
        let builders = self.clone();
        Ok(jobs.submit_limited(
            JobKind::Build,
            target,
            Some(self.build_slots()),
            move |ctx| Ok(result(builders.build(&plan, ctx)?)?),
        )?)
    }

    /// Runs a build this host took from the queue.
    pub fn start_claimed(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        row: JobRow,
        bases: Arc<dyn BaseSource>,
        result: BuildResultFn,
    ) -> Result<(), JobError> {
        let spec = row.spec.clone();
        let builders = self.clone();
        jobs.start(row, Some(self.build_slots()), move |ctx| {
            let spec = spec.ok_or("a queued build without its request")?;
            let req: BuildRequest = serde_json::from_value(spec)
                .map_err(|e| format!("a queued build's request is unreadable: {e}"))?;
            let plan = builders.plan(req)?;
            bases.ensure(&plan.builder.row.base_id, ctx)?;
            Ok(result(builders.build(&plan, ctx)?)?)
        })
    }

    /// Prepares a bob as a builder here (a job), or queues the prepare for
    /// the fleet. An unknown provider or bob is the caller's error, not a
    /// failed job.
    pub fn submit_prepare(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        provider: String,
        bob: String,
        affinity: Option<String>,
        result: PrepareResultFn,
    ) -> Result<JobRow, BuildError> {
        if !self.bobs(&provider)?.iter().any(|b| b.id == bob) {
            return Err(BuildError::NoBob { provider, id: bob });
        }
        let target = Some(format!("{provider}/{bob}"));
        if jobs.shared() {
            let spec = serde_json::to_value(QueuedPrepare { provider, bob })
                .map_err(|e| BuildError::Queue(format!("encoding the prepare: {e}")))?;
            return Ok(jobs.enqueue(JobKind::Prepare, target, spec, affinity)?);
        }
        let builders = self.clone();
        Ok(jobs.submit(JobKind::Prepare, target, move |ctx| {
            let (builder, existed) = builders.prepare(&provider, &bob, ctx)?;
            Ok(result(builder, existed)?)
        })?)
    }

    /// Runs a prepare this host took from the queue.
    pub fn start_claimed_prepare(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        row: JobRow,
        result: PrepareResultFn,
    ) -> Result<(), JobError> {
        let spec = row.spec.clone();
        let builders = self.clone();
        jobs.start(row, None, move |ctx| {
            let spec = spec.ok_or("a queued prepare without its request")?;
            let q: QueuedPrepare = serde_json::from_value(spec)
                .map_err(|e| format!("a queued prepare's request is unreadable: {e}"))?;
            let (builder, existed) = builders.prepare(&q.provider, &q.bob, ctx)?;
            Ok(result(builder, existed)?)
        })
    }
}
