//! With a shared store: this host takes builds from the fleet's queue while
//! it has a free build slot (so the least loaded hosts take the most) and
//! is not draining; at once when one is queued here, else every half
//! second. A failed look is logged once until one succeeds.

use std::sync::Arc;
use std::time::Duration;

use crate::build::queue::BaseSource;
use crate::build::Builders;
use crate::hosts::{HostStatus, Hosts};
use crate::jobs::{JobKind, Jobs};

const EVERY: Duration = Duration::from_millis(500);

pub async fn run(
    jobs: Arc<Jobs>,
    builders: Arc<Builders>,
    hosts: Arc<Hosts>,
    bases: Arc<dyn BaseSource>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = jobs.queued_here().notified() => {}
            _ = tokio::time::sleep(EVERY) => {}
        }
        let (jobs, builders, hosts, bases) =
            (jobs.clone(), builders.clone(), hosts.clone(), bases.clone());
        let took = tokio::task::spawn_blocking(move || take(&jobs, &builders, &hosts, &bases))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match took {
            Ok(_) if failing => {
                tracing::info!("job queue: the store answers again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!("job queue: {e}; queued builds wait");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Takes what this host has room for; returns how many.
fn take(
    jobs: &Arc<Jobs>,
    builders: &Arc<Builders>,
    hosts: &Hosts,
    bases: &Arc<dyn BaseSource>,
) -> Result<usize, String> {
    let me = hosts.get(hosts.name()).map_err(|e| e.to_string())?;
    if me.status == HostStatus::Draining {
        return Ok(0);
    }
    let mut taken = 0;
    loop {
        let waiting = jobs.claimed_waiting().map_err(|e| e.to_string())?;
        if builders.build_slots().free() <= waiting {
            return Ok(taken);
        }
        let Some(row) = jobs.claim(&[JobKind::Build]).map_err(|e| e.to_string())? else {
            return Ok(taken);
        };
        tracing::info!(job = %row.id, "took a build from the fleet's queue");
        builders
            .start_claimed(jobs, row, bases.clone(), crate::api::build_result)
            .map_err(|e| e.to_string())?;
        taken += 1;
    }
}
