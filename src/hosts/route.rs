//! Which host answers a request about an instance or a job: the one whose
//! hangar holds the instance's dock, or whose pod runs it (for what the
//! pod answers: its console, stop, start, restart, removal), or that runs
//! the job (its cancel flag is there; its log is followed by `job_log`,
//! which moves with it). None: this host does, or nobody can (a holder
//! that is down or gone; the instance is `unknown` then, and this host
//! says so).

use crate::hangar::fleet::Fleet;
use crate::jobs::Jobs;

use super::peer::Peer;
use super::{Hosts, HostsError};

pub fn for_instance(
    hosts: &Hosts,
    fleet: &Fleet,
    reference: &str,
    pod: bool,
) -> Result<Option<Peer>, HostsError> {
    let Ok(id) = fleet.resolve(reference) else {
        return Ok(None);
    };
    if pod {
        let launched_on = fleet.launched_on(&id)?;
        if let Some(name) = launched_on {
            return match name == hosts.name() {
                true => Ok(None),
                false => hosts.peer(&name),
            };
        }
    }
    let holder = fleet
        .with(&id, |l| l.held_elsewhere().map(str::to_string))
        .ok()
        .flatten();
    match holder {
        Some(name) => hosts.peer(&name),
        None => Ok(None),
    }
}

pub fn for_job(hosts: &Hosts, jobs: &Jobs, reference: &str) -> Result<Option<Peer>, HostsError> {
    match jobs.get(reference).ok().and_then(|row| row.host) {
        Some(name) => hosts.peer(&name),
        None => Ok(None),
    }
}
