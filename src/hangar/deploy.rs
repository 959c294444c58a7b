//! Live update of a docked instance (spec/uplink.md 6), as a job: send
//! UPDATE with the image, require the ack to be the SHA-1 of what was
//! sent, then wait for the instance to dock again and report that SHA-1 as
//! IDENT's `binary`, the only success signal there is. It also owns the
//! rule that an instance takes one deploy (or upgrade) at a time: `submit`
//! checks the jobs in progress under the instance's deploy lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use super::fleet::{Fleet, FleetError};
use super::frame::{read_transport, Code, HEADER_LEN};
use super::token::InstanceId;
use crate::catalog::{Catalog, CatalogError};
use crate::jobs::{JobContext, JobError, JobKind, JobState, Jobs};
use crate::names::ImageId;
use crate::store::blobs::BlobError;
use crate::store::catalog::{ImageRow, ListQuery};
use crate::store::jobs::JobRow;

/// The kind of a deploy job.
pub const DEPLOY: JobKind = JobKind::Deploy;
/// The kind of an upgrade job (a build, then a deploy).
pub const UPGRADE: JobKind = JobKind::Upgrade;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("instance {0} is {1}, not connected: it must be docked to take a live update")]
    NotDocked(String, &'static str),
    #[error("refusing to deploy: {0}; add force=true to deploy anyway")]
    Refused(String),
    #[error("instance {instance} is being deployed to already (job {job})")]
    InProgress { instance: String, job: String },
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Jobs(#[from] JobError),
}

/// Why a deploy that had become a job failed: what `run` returns, kept
/// typed up to the job runner (which records its message). Apart from
/// `DeployError`, which says why a deploy is refused before it is a job
/// (the API's 4xx), so that these never reach an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum DeployRunError {
    #[error("reading image {image}: {source}")]
    OpenImage { image: ImageId, source: BlobError },
    #[error("image {image}: {source}")]
    FetchImage {
        image: ImageId,
        source: Box<CatalogError>,
    },
    #[error("reading image {image}: {source}")]
    ReadImage {
        image: ImageId,
        source: std::io::Error,
    },
    #[error("image {image} is damaged on disk: its SHA-1 is now {sha1}")]
    Damaged { image: ImageId, sha1: String },
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("cancelled")]
    Cancelled,
    /// `what` says what the instance did not do in time.
    #[error("instance {instance} {what} within {secs}s")]
    TimedOut {
        instance: InstanceId,
        what: &'static str,
        secs: u64,
    },
    #[error("instance {instance} acknowledged the UPDATE with {ack:?}, not the image's SHA-1 {sha1}: it did not receive the image intact")]
    WrongAck {
        instance: InstanceId,
        ack: String,
        sha1: String,
    },
    /// `running`: the binary it reports, if any.
    #[error("instance {instance} docked again running {}, not {sha1}: the live update failed", running.as_deref().unwrap_or("its old binary"))]
    NotUpdated {
        instance: InstanceId,
        running: Option<String>,
        sha1: String,
    },
}

/// A checked deploy, ready to run as a job.
#[derive(Debug, Clone)]
pub struct Plan {
    pub instance: InstanceId,
    pub image: ImageRow,
    /// Why this deploy deserves a warning (uplink URLs); empty when none.
    pub warnings: Vec<String>,
    /// From sending UPDATE to the instance being back with the new binary.
    pub timeout: Duration,
}

/// Checks a deploy before it is a job: the instance is docked, the image
/// exists, and its uplink URL is the instance's (else refused unless
/// `force`, with the reason).
pub fn plan(
    fleet: &Fleet,
    catalog: &Catalog,
    instance: &str,
    // An image reference typed by a user, or the id of an image just built.
    image: &(impl AsRef<str> + ?Sized),
    force: bool,
    timeout: Duration,
) -> Result<Plan, DeployError> {
    let id = fleet.resolve(instance)?;
    let image = catalog.image(image.as_ref())?;
    let (status, reported) = fleet.with(&id, |l| (l.status, l.uplink_url().map(str::to_string)))?;
    if !status.can_deploy() {
        return Err(DeployError::NotDocked(id.to_string(), status.as_str()));
    }
    let mut warnings = Vec::new();
    match (&image.uplink_url, &reported) {
        (None, _) => warnings.push(format!(
            "image {} has no known uplink (an uploaded image): it may not dock here again",
            image.id
        )),
        (Some(_), None) => warnings.push(format!(
            "instance {id} has not reported its uplink URL, so it cannot be compared with the image's"
        )),
        (Some(theirs), Some(ours)) if theirs.trim_end_matches('/') != ours.trim_end_matches('/') => {
            warnings.push(format!(
                "image {}'s uplink URL {theirs} differs from instance {id}'s {ours}: it will dock elsewhere",
                image.id
            ))
        }
        _ => {}
    }
    if !warnings.is_empty() && !force {
        return Err(DeployError::Refused(warnings.join("; ")));
    }
    Ok(Plan {
        instance: id,
        image,
        warnings,
        timeout,
    })
}

/// Submits a checked deploy as a job, unless one to the same instance is
/// queued or running (a second one would race the first for the ack).
pub fn submit(
    jobs: &Arc<Jobs>,
    fleet: &Arc<Fleet>,
    catalog: &Arc<Catalog>,
    plan: Plan,
) -> Result<JobRow, DeployError> {
    let instance = plan.instance.clone();
    let (f, c) = (fleet.clone(), catalog.clone());
    submit_one(jobs, fleet, &instance, |jobs| {
        Ok(jobs.submit(DEPLOY, Some(instance.to_string()), move |ctx| {
            Ok(run(&f, &c, &plan, ctx)?)
        })?)
    })
}

/// Runs `submit` (which queues a deploy or upgrade job of `id`) under the
/// instance's deploy lock, once no deploy or upgrade of it is unfinished.
/// Blocking.
pub fn submit_one<E>(
    jobs: &Arc<Jobs>,
    fleet: &Fleet,
    id: &InstanceId,
    submit: impl FnOnce(&Arc<Jobs>) -> Result<JobRow, E>,
) -> Result<JobRow, E>
where
    E: From<DeployError>,
{
    let _one_at_a_time = fleet.deploy_lock(id);
    if let Some(job) = in_progress(jobs, id).map_err(DeployError::from)? {
        return Err(DeployError::InProgress {
            instance: id.to_string(),
            job,
        }
        .into());
    }
    submit(jobs)
}

/// The unfinished deploy or upgrade job of `id`, if any. Blocking.
fn in_progress(jobs: &Jobs, id: &InstanceId) -> Result<Option<String>, JobError> {
    for kind in [DEPLOY, UPGRADE] {
        for wanted in [JobState::Queued, JobState::Running] {
            let q = ListQuery {
                limit: Some(1),
                filters: vec![
                    ("kind", kind.as_str().to_string()),
                    ("target", id.to_string()),
                    ("state", wanted.as_str().to_string()),
                ],
                ..ListQuery::default()
            };
            if let Some(job) = jobs.list(&q)?.into_iter().next() {
                return Ok(Some(job.id.to_string()));
            }
        }
    }
    Ok(None)
}

const POLL: Duration = Duration::from_millis(20);

/// Runs a deploy (blocking; a job's work). The result names the instance,
/// the image and the time the instance says the swap took.
pub fn run(
    fleet: &Arc<Fleet>,
    catalog: &Catalog,
    plan: &Plan,
    job: &JobContext,
) -> Result<serde_json::Value, DeployRunError> {
    let id = &plan.instance;
    for w in &plan.warnings {
        job.log(&format!("warning: {w} (forced)"));
    }
    let image = &plan.image.id;
    // Built or uploaded on another host, it is fetched from there first.
    catalog
        .image_blob(&plan.image)
        .map_err(|source| DeployRunError::FetchImage {
            image: image.clone(),
            source: Box::new(source),
        })?;
    let (mut file, size) = catalog
        .blobs()
        .open_blob(&plan.image.sha256)
        .map_err(|source| DeployRunError::OpenImage {
            image: image.clone(),
            source,
        })?;
    let message = read_transport(Code::Update, &mut file, size as usize).map_err(|source| {
        DeployRunError::ReadImage {
            image: image.clone(),
            source,
        }
    })?;
    let sha1 = hex::encode(Sha1::digest(&message[HEADER_LEN..]));
    if *image != *sha1.as_str() {
        return Err(DeployRunError::Damaged {
            image: image.clone(),
            sha1,
        });
    }
    let (generation, idents) = fleet.with(id, |l| {
        l.update_ack = None;
        (l.session_generation(), l.ident_seq)
    })?;
    // Noted first: the instance closes its dock as soon as it has the image.
    fleet.note(id, "deploy", format!("sending image {}", plan.image.id));
    fleet.send(id, message)?;
    job.log(&format!(
        "sent UPDATE with image {} ({size} bytes) to instance {id}",
        plan.image.id
    ));
    let deadline = Instant::now() + plan.timeout;
    let wait = |what: &'static str,
                ready: &dyn Fn(&super::fleet::Live) -> bool|
     -> Result<(), DeployRunError> {
        loop {
            if fleet.with(id, |l| ready(l))? {
                return Ok(());
            }
            if job.cancelled() {
                return Err(DeployRunError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(DeployRunError::TimedOut {
                    instance: id.clone(),
                    what,
                    secs: plan.timeout.as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
    };
    wait("did not acknowledge the UPDATE", &|l| {
        l.update_ack.is_some()
    })?;
    let ack = fleet.with(id, |l| l.update_ack.clone().unwrap_or_default())?;
    if !ack.eq_ignore_ascii_case(&sha1) {
        let why = DeployRunError::WrongAck {
            instance: id.clone(),
            ack,
            sha1,
        };
        fleet.note(id, "deploy-failed", why.to_string());
        return Err(why);
    }
    job.log(&format!(
        "the instance acknowledged {ack}; waiting for it to dock again"
    ));
    wait("did not dock again after the update", &|l| {
        l.status.is_docked() && l.session_generation() != generation && l.ident_seq > idents
    })
    .inspect_err(|why| fleet.note(id, "deploy-failed", why.to_string()))?;
    let (running, took) = fleet.with(id, |l| {
        let took = l
            .ident
            .as_ref()
            .and_then(|i| i.get("update_time_taken"))
            .cloned();
        (l.binary().map(str::to_string), took)
    })?;
    if running.as_deref() != Some(sha1.as_str()) {
        let why = DeployRunError::NotUpdated {
            instance: id.clone(),
            running,
            sha1,
        };
        fleet.note(id, "deploy-failed", why.to_string());
        return Err(why);
    }
    fleet.set_image(id, &sha1)?;
    fleet.note(id, "deployed", sha1.clone());
    job.log(&format!("instance {id} runs image {sha1}"));
    Ok(serde_json::json!({
        "instance": id.as_str(),
        "image": sha1,
        "update_time_taken": took,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_errors_say_what_the_strings_said() {
        let instance = InstanceId::new("0123456789abcdef0123456789abcdef").unwrap();
        let sha1 = "0123456789abcdef0123456789abcdef01234567".to_string();
        let timed_out = DeployRunError::TimedOut {
            instance: instance.clone(),
            what: "did not acknowledge the UPDATE",
            secs: 30,
        };
        assert_eq!(
            timed_out.to_string(),
            "instance 0123456789abcdef0123456789abcdef did not acknowledge the UPDATE within 30s"
        );
        let old = DeployRunError::NotUpdated {
            instance,
            running: None,
            sha1: sha1.clone(),
        };
        assert_eq!(
            old.to_string(),
            format!("instance 0123456789abcdef0123456789abcdef docked again running its old binary, not {sha1}: the live update failed")
        );
        assert_eq!(DeployRunError::Cancelled.to_string(), "cancelled");
        let damaged = DeployRunError::Damaged {
            image: ImageId::new(&sha1).unwrap(),
            sha1: "f".repeat(40),
        };
        assert_eq!(
            damaged.to_string(),
            format!(
                "image {sha1} is damaged on disk: its SHA-1 is now {}",
                "f".repeat(40)
            )
        );
    }
}
