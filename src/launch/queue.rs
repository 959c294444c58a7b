//! Launches as the fleet's work. On one host a launch is made where it
//! was asked for. When several hosts share the store, what any host would
//! judge alike is checked where it was asked for (the words, the alias,
//! the image), and the launch is queued with its image resolved to an id;
//! the host placement picks (`hosts::placement`) takes it, checks the rest
//! on itself (its hypervisor, base and bounds; the image's bytes are
//! fetched from the host that has them) and makes it. A draining host
//! queues its launched instances again, each with its identity, and
//! removes their pods: they boot elsewhere as the same instances.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::control;
use super::service::{Launches, ServiceError};
use super::{LaunchError, LaunchRecord};
use crate::jobs::{JobError, JobKind, Jobs};
use crate::model::instances::LaunchRequest;
use crate::runtime::jails::instance_net::InstanceNet;
use crate::store::jobs::JobRow;

/// Turns a made launch into the job's result (the API's shape).
pub type LaunchResultFn = fn(&Launches, &LaunchRecord) -> Result<serde_json::Value, String>;

/// Which hosts could take a launch (the hosts' business): a launch no
/// host can make is refused when asked for, not left waiting.
pub trait Seats: Send + Sync {
    /// Why no host can make a launch that needs `need` (pinned to
    /// `host`), if none can.
    fn refuse(&self, need: Need<'_>, host: Option<&str>) -> Result<Option<String>, String>;
}

/// What a launch needs of the host that makes it. What it leaves unsaid
/// the host's own defaults give (its hypervisor, `launch.memory`,
/// `launch.cpus`), which fit any host that can launch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Need<'a> {
    pub hypervisor: Option<&'a str>,
    pub memory_mib: Option<u64>,
    pub cpus: Option<u32>,
}

impl<'a> Need<'a> {
    pub fn of(req: &'a LaunchRequest) -> Need<'a> {
        Need {
            hypervisor: req.hypervisor.as_deref(),
            memory_mib: req.memory,
            cpus: req.cpus,
        }
    }
}

/// A queued launch's `spec`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedLaunch {
    /// As asked, its image an id, its host affinity in the job's row.
    pub request: LaunchRequest,
    /// Set when an instance moves off a draining host: it keeps its
    /// identity (its SMBIOS UUID, so its instance id).
    #[serde(default)]
    pub uuid: Option<uuid::Uuid>,
}

impl QueuedLaunch {
    pub fn of(row: &JobRow) -> Result<QueuedLaunch, String> {
        let spec = row
            .spec
            .clone()
            .ok_or("a queued launch without its request")?;
        serde_json::from_value(spec).map_err(|e| format!("a queued launch is unreadable: {e}"))
    }

    /// The hypervisor it must have (None: whichever the host has).
    pub fn needs(&self) -> Need<'_> {
        Need::of(&self.request)
    }

    pub fn spread(&self) -> Option<&str> {
        self.request.spread.as_deref()
    }
}

impl Launches {
    /// Checks a launch and makes it here (a job), or queues it for the fleet.
    pub fn submit(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        mut req: LaunchRequest,
        result: LaunchResultFn,
    ) -> Result<JobRow, ServiceError> {
        let affinity = req.host.take();
        if jobs.shared() {
            let parsed = self.parse(&req)?;
            if let Some(seats) = self.seats.get() {
                let refused = seats
                    .refuse(Need::of(&req), affinity.as_deref())
                    .map_err(ServiceError::Seats)?;
                if let Some(why) = refused {
                    return Err(ServiceError::NoSeat(why));
                }
            }
            req.image_id = parsed.image_id().map(str::to_string);
            let spec = encode(QueuedLaunch {
                request: req,
                uuid: None,
            })?;
            return Ok(jobs.enqueue(JobKind::Launch, Some(parsed.target()), spec, affinity)?);
        }
        let checked = self.check(req)?;
        let target = Some(checked.target());
        let launches = self.clone();
        Ok(jobs.submit(JobKind::Launch, target, move |_ctx| {
            let record = launches.make(checked)?;
            Ok(result(&launches, &record)?)
        })?)
    }

    /// Makes a launch this host took from the queue.
    pub fn start_claimed(
        self: &Arc<Self>,
        jobs: &Arc<Jobs>,
        row: JobRow,
        result: LaunchResultFn,
    ) -> Result<(), JobError> {
        let queued = QueuedLaunch::of(&row);
        let launches = self.clone();
        jobs.start(row, None, move |ctx| {
            let queued = queued?;
            let parsed = launches.parse(&queued.request)?;
            ctx.log(&format!("launching on host {}", launches.catalog.host()));
            let checked = launches.check_here(parsed, queued.uuid)?;
            let record = launches.make(checked)?;
            Ok(result(&launches, &record)?)
        })
    }

    /// On a draining host: queues each instance launched here from an
    /// image to launch on another host as itself, then removes its pod
    /// here. Returns the instances moved, and those that stay (booted
    /// from a kernel file: the files are this host's own).
    pub fn move_away(&self, jobs: &Jobs) -> Result<(Vec<String>, Vec<String>), ServiceError> {
        let me = self.catalog.host();
        let records = control::all(&self.host)?;
        self.settle_held_moves(jobs, &records)?;
        let (mut moved, mut stay) = (Vec::new(), Vec::new());
        for (record, _) in records {
            let id = record.instance_id.clone();
            let spread = self
                .catalog
                .with_store(|s| s.instance_spread(&id))
                .map_err(LaunchError::from)?;
            let Some(request) = request_of(&record, spread) else {
                stay.push(id);
                continue;
            };
            let spec = encode(QueuedLaunch {
                request,
                uuid: Some(record.uuid),
            })?;
            // Queued held for this host (which, draining, takes nothing),
            // and let go once the pod here is gone: the instance never
            // runs twice, and is never left in no queue.
            let job = jobs.enqueue(
                JobKind::Launch,
                Some(record.image_name.clone()),
                spec,
                Some(me.to_string()),
            )?;
            if let Err(e) = control::remove(&self.host, &id) {
                if let Err(undo) = jobs.cancel(job.id.as_str()) {
                    tracing::warn!("instance {id} stays, and its move waits in the queue: {undo}");
                }
                return Err(e.into());
            }
            self.catalog
                .with_store(|s| s.clear_instance_launched(&id, me))
                .map_err(LaunchError::from)?;
            jobs.release(&job.id)?;
            moved.push(id);
        }
        Ok((moved, stay))
    }

    /// Moves held for this host that a crash left half done (this server
    /// stopped between queueing a move and letting it go): one whose pod
    /// is still here is cancelled (it is queued again), one whose pod is
    /// gone is let go. A launch a user pinned here carries no identity and
    /// waits, as pinned launches do.
    fn settle_held_moves(
        &self,
        jobs: &Jobs,
        records: &[(LaunchRecord, control::PodRun)],
    ) -> Result<(), ServiceError> {
        for row in jobs.held_here(JobKind::Launch)? {
            let Some(uuid) = QueuedLaunch::of(&row).ok().and_then(|q| q.uuid) else {
                continue;
            };
            if records.iter().any(|(r, _)| r.uuid == uuid) {
                jobs.cancel(row.id.as_str())?;
            } else {
                jobs.release(&row.id)?;
            }
        }
        Ok(())
    }
}

fn encode(queued: QueuedLaunch) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(&queued)
        .map_err(|e| ServiceError::Request(format!("encoding the launch: {e}")))
}

/// The request that launches `record`'s instance again, as it runs:
/// None for one booted from a kernel file.
fn request_of(record: &LaunchRecord, spread: Option<String>) -> Option<LaunchRequest> {
    let super::record::Boot::Multiboot { cmdline } = &record.boot else {
        return None;
    };
    let net = (record.net != InstanceNet::default())
        .then(|| format!("{}/{}", record.net.gateway, record.net.network.prefix));
    Some(LaunchRequest {
        image_id: Some(record.image_id.clone()?),
        append: Some(cmdline.clone()),
        hypervisor: Some(record.hypervisor.as_str().to_string()),
        memory: Some(record.memory_mib),
        cpus: Some(record.cpus),
        restart: Some(record.restart.as_str().to_string()),
        publish: record.publish.iter().map(|p| p.to_string()).collect(),
        net,
        spread,
        ..LaunchRequest::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::{HypervisorKind, RestartPolicy};
    use crate::launch::record::Boot;

    fn record(boot: Boot, net: InstanceNet) -> LaunchRecord {
        LaunchRecord {
            instance_id: "a".repeat(32),
            uuid: uuid::Uuid::nil(),
            pod_id: crate::names::PodId::random(),
            hypervisor: HypervisorKind::Qemu,
            memory_mib: 96,
            cpus: 2,
            restart: RestartPolicy::OnFailure,
            boot,
            image_id: Some("f".repeat(40)),
            image_name: "web:1".into(),
            publish: vec!["127.0.0.1:8080:80/tcp".parse().unwrap()],
            net,
        }
    }

    #[test]
    fn a_moved_instance_is_asked_for_as_it_runs() {
        let net = InstanceNet {
            network: crate::config::Ipv4Net::parse("10.9.0.0/24").unwrap(),
            gateway: "10.9.0.1".parse().unwrap(),
            ..InstanceNet::default()
        };
        let r = record(
            Boot::Multiboot {
                cmdline: "-v".into(),
            },
            net,
        );
        let req = request_of(&r, Some("web".into())).unwrap();
        assert_eq!(req.image_id.as_deref(), Some("f".repeat(40).as_str()));
        assert_eq!(req.append.as_deref(), Some("-v"));
        assert_eq!(req.hypervisor.as_deref(), Some("qemu"));
        assert_eq!((req.memory, req.cpus), (Some(96), Some(2)));
        assert_eq!(req.restart.as_deref(), Some("on-failure"));
        assert_eq!(req.publish, vec!["127.0.0.1:8080:80/tcp".to_string()]);
        assert_eq!(req.net.as_deref(), Some("10.9.0.1/24"));
        assert_eq!(req.spread.as_deref(), Some("web"));
        assert_eq!((req.alias, req.host), (None, None));
        // The default network is left to the default.
        let plain = record(
            Boot::Multiboot {
                cmdline: String::new(),
            },
            InstanceNet::default(),
        );
        assert_eq!(request_of(&plain, None).unwrap().net, None);
        // A kernel's files are the host's own: it stays.
        let kernel = record(
            Boot::Linux {
                initrd: false,
                append: String::new(),
            },
            InstanceNet::default(),
        );
        assert!(request_of(&kernel, None).is_none());
    }

    #[test]
    fn a_queued_launch_says_what_it_needs() {
        let row_spec = serde_json::json!({
            "request": {"imageId": "abc", "hypervisor": "qemu", "spread": "db", "memory": 96},
        });
        let q: QueuedLaunch = serde_json::from_value(row_spec).unwrap();
        assert_eq!(
            (q.needs().hypervisor, q.spread(), q.uuid),
            (Some("qemu"), Some("db"), None)
        );
        assert_eq!((q.needs().memory_mib, q.needs().cpus), (Some(96), None));
    }
}
