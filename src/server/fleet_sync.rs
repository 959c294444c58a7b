//! When several hosts share the store: every half second, what the others
//! changed in the fleet is merged into this host's (hangar/fleet/spread.rs),
//! with which hosts are down now; the jobs a host left queued or running
//! when it went down fail with that reason, never stuck `running`; the
//! tombstones of deleted instances are pruned now and then. A failed look
//! is logged once until one succeeds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::hangar::fleet::Fleet;
use crate::hosts::{HostStatus, Hosts};

const EVERY: Duration = Duration::from_millis(500);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub async fn run(
    catalog: Arc<Catalog>,
    fleet: Arc<Fleet>,
    hosts: Arc<Hosts>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut failing = false;
    let mut pruned = Instant::now();
    let mut down_before: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let (catalog, fleet, hosts) = (catalog.clone(), fleet.clone(), hosts.clone());
        let prune = pruned.elapsed() >= PRUNE_EVERY;
        let before = down_before.clone();
        let look =
            tokio::task::spawn_blocking(move || once(&catalog, &fleet, &hosts, &before, prune))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
        match look {
            Ok(down) => {
                if failing {
                    tracing::info!("fleet sync: the store answers again");
                    failing = false;
                }
                if prune {
                    pruned = Instant::now();
                }
                down_before = down;
            }
            Err(e) if !failing => {
                tracing::warn!("fleet sync failed: {e}; other hosts' changes wait");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// One look; returns the hosts down now.
fn once(
    catalog: &Catalog,
    fleet: &Fleet,
    hosts: &Hosts,
    down_before: &HashSet<String>,
    prune: bool,
) -> Result<HashSet<String>, String> {
    let down: HashSet<String> = hosts
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|h| h.status == HostStatus::Down && !h.me)
        .map(|h| h.row.beat.name)
        .collect();
    for host in down.difference(down_before) {
        let why = format!("host {host} went down while it ran");
        let settled = catalog
            .with_store(|s| s.settle_jobs_of(host, &why))
            .map_err(|e| e.to_string())?;
        tracing::warn!(
            "host {host} is down: {} of its job(s) failed, {} not started went back to the queue; its instances are unknown until they dock again",
            settled.failed,
            settled.requeued
        );
    }
    let merged = fleet.merge_changes(&down).map_err(|e| e.to_string())?;
    if merged.handed_over > 0 {
        tracing::info!(
            "{} instance(s) docked on other hosts: their docks here are closed",
            merged.handed_over
        );
    }
    if prune {
        catalog
            .with_store(|s| s.prune_instance_deletions())
            .map_err(|e| e.to_string())?;
    }
    Ok(down)
}
