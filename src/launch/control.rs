//! The verbs on a launched instance: start (a supervisor, unless one
//! runs), stop (what the operator wants is recorded first, so that no
//! policy brings it back, then its supervisor is told), restart, remove
//! (stop, then its pod, record and console go), and what a deploy changes
//! (the image a restart boots).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::record::{LaunchRecord, IMAGE_IN_POD};
use super::{console, LaunchError};
use crate::runtime::{Host, Pod, RuntimeError};
use crate::store::launches::Wanted;

/// What a launched instance's pod is doing, as the fleet shows it until
/// the instance docks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodRun {
    /// Its supervisor runs (the hypervisor boots, or waits to restart).
    Running,
    Stopped,
}

pub fn record(host: &Host, instance_id: &str) -> Result<LaunchRecord, LaunchError> {
    let row = host
        .store()
        .launch(instance_id)?
        .ok_or_else(|| LaunchError::NotLaunched(instance_id.to_string()))?;
    serde_json::from_str(&row.spec).map_err(|e| LaunchError::BadRecord {
        id: instance_id.to_string(),
        why: e.to_string(),
    })
}

/// Every launch record, with whether its supervisor runs.
pub fn all(host: &Host) -> Result<Vec<(LaunchRecord, PodRun)>, LaunchError> {
    let rows = host.store().launches()?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let record: LaunchRecord = serde_json::from_str(&row.spec).ok()?;
            let run = if row
                .supervisor
                .is_some_and(|pid| alive(pid, &row.instance_id))
            {
                PodRun::Running
            } else {
                PodRun::Stopped
            };
            Some((record, run))
        })
        .collect())
}

/// Whether the supervisor of `instance_id` recorded as `pid` still runs.
/// On Linux it must be that supervisor (a pid is reused) and not a zombie
/// (a supervisor its parent reaps late has ended all the same).
fn alive(pid: i32, instance_id: &str) -> bool {
    if cfg!(target_os = "linux") {
        let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.contains(&b"__supervise-instance".as_slice())
                && args.contains(&instance_id.as_bytes())
        });
        ours && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    } else {
        kill(Pid::from_raw(pid), None).is_ok()
    }
}

fn supervisor(host: &Host, instance_id: &str) -> Result<Option<i32>, LaunchError> {
    Ok(host
        .store()
        .launch(instance_id)?
        .ok_or_else(|| LaunchError::NotLaunched(instance_id.to_string()))?
        .supervisor
        .filter(|&pid| alive(pid, instance_id)))
}

pub(super) fn spawn_supervisor(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    let pid = host.spawn_detached(&["__supervise-instance", instance_id])?;
    // Recorded here too, so that the instance reads as running as soon as
    // this returns, not when the supervisor gets to it.
    host.store()
        .set_launch_supervisor(instance_id, Some(pid as i32), None)?;
    Ok(())
}

/// At server start and at boot: every launched instance that should run,
/// has no supervisor and whose policy restarts it gets its supervisor
/// again. Returns their ids.
pub fn resume(host: &Host) -> Result<Vec<String>, LaunchError> {
    let mut resumed = Vec::new();
    // Read first: the store's lock must not be held while supervisors are
    // spawned (they take it).
    let rows = host.store().launches()?;
    for row in rows {
        if row.wanted != Wanted::Running
            || row
                .supervisor
                .is_some_and(|pid| alive(pid, &row.instance_id))
        {
            continue;
        }
        let Ok(record) = serde_json::from_str::<LaunchRecord>(&row.spec) else {
            continue;
        };
        if record.restart.reboots_in_place() {
            spawn_supervisor(host, &row.instance_id)?;
            resumed.push(row.instance_id);
        }
    }
    Ok(resumed)
}

/// Starts a stopped launched instance; one that runs is left as it is.
pub fn start(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    host.store()
        .set_launch_wanted(instance_id, Wanted::Running)?;
    if supervisor(host, instance_id)?.is_none() {
        spawn_supervisor(host, instance_id)?;
    }
    Ok(())
}

/// Stops a launched instance and waits until its supervisor is gone.
pub fn stop(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    host.store()
        .set_launch_wanted(instance_id, Wanted::Stopped)?;
    if let Some(pid) = supervisor(host, instance_id)? {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + host.stop_grace() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        while alive(pid, instance_id) && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
    // A cell without a supervisor (it was killed outright) ends here.
    let record = record(host, instance_id)?;
    let pod = host.pod(record.pod_id.as_str())?;
    if pod.row.state.can_stop() {
        host.kill_pod(&pod)?;
    }
    Ok(())
}

pub fn restart(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    stop(host, instance_id)?;
    start(host, instance_id)
}

/// Stops a launched instance and removes its pod, record and console.
pub fn remove(host: &Host, instance_id: &str) -> Result<(), LaunchError> {
    stop(host, instance_id)?;
    let record = record(host, instance_id)?;
    match host.pod(record.pod_id.as_str()) {
        Ok(pod) => unmake(host, instance_id, &pod)?,
        Err(RuntimeError::NoSuchPod(_)) => host.store().delete_launch(instance_id)?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Undoes a launch: the record, the console, the pod.
pub(super) fn unmake(host: &Host, instance_id: &str, pod: &Pod) -> Result<(), LaunchError> {
    host.store().delete_launch(instance_id)?;
    console::remove(&console::path(&host.config().data_dir, instance_id));
    host.remove_pod(pod, true)?;
    Ok(())
}

/// After an acknowledged deploy: the image file the instance runs now
/// becomes the one its pod boots, so that a crash or a restart boots it.
pub fn deployed(
    host: &Host,
    instance_id: &str,
    image: &Path,
    image_id: &str,
) -> Result<(), LaunchError> {
    let mut record = record(host, instance_id)?;
    let pod = host.pod(record.pod_id.as_str())?;
    super::create::place(&pod, image, IMAGE_IN_POD)?;
    record.image_id = Some(image_id.to_string());
    // A deployed image is an IncludeOS one: an instance launched from a
    // kernel (the Linux boot path) boots it as multiboot from now on.
    if let super::record::Boot::Linux { .. } = record.boot {
        record.boot = super::record::Boot::Multiboot {
            cmdline: String::new(),
        };
    }
    host.store()
        .set_launch_spec(instance_id, &record.to_json())?;
    Ok(())
}
