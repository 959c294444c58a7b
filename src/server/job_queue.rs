//! With a shared store: this host takes work from the fleet's queue while
//! it is not draining; at once when some is queued here, else every half
//! second. Builds and builder prepares while it has a free build slot (so
//! the least loaded hosts take the most); launches that placement gives it
//! (`hosts::placement`). A draining host sends its launched instances to
//! launch elsewhere. A failed look is logged once until one succeeds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::build::queue::BaseSource;
use crate::build::Builders;
use crate::hosts::placement::{Board, Wants};
use crate::hosts::{HostStatus, Hosts};
use crate::jobs::{JobKind, Jobs};
use crate::launch::queue::QueuedLaunch;
use crate::launch::service::Launches;
use crate::store::StoreError;

const EVERY: Duration = Duration::from_millis(500);
/// The most launches one look takes (placement is weighed again after each).
const LAUNCHES_PER_LOOK: usize = 8;

/// What the queue's taker works with.
pub struct Taker {
    pub jobs: Arc<Jobs>,
    pub builders: Arc<Builders>,
    pub launches: Arc<Launches>,
    pub hosts: Arc<Hosts>,
    pub bases: Arc<dyn BaseSource>,
    /// Instances that stay on this draining host (told once).
    pub staying: std::sync::Mutex<HashSet<String>>,
}

pub async fn run(taker: Arc<Taker>, stop: tokio_util::sync::CancellationToken) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = taker.jobs.queued_here().notified() => {}
            _ = tokio::time::sleep(EVERY) => {}
        }
        let t = taker.clone();
        let took = tokio::task::spawn_blocking(move || t.look())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match took {
            Ok(()) if failing => {
                tracing::info!("job queue: the store answers again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!("job queue: {e}; queued work waits");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

impl Taker {
    fn look(&self) -> Result<(), String> {
        let me = self
            .hosts
            .get(self.hosts.name())
            .map_err(|e| e.to_string())?;
        if me.status == HostStatus::Draining {
            return self.move_launches();
        }
        self.take_builds()?;
        self.take_launches()
    }

    /// Takes builds and prepares while a build slot is free.
    fn take_builds(&self) -> Result<(), String> {
        loop {
            let waiting = self
                .jobs
                .claimed_waiting(JobKind::Build)
                .map_err(|e| e.to_string())?;
            if self.builders.build_slots().free() <= waiting {
                return Ok(());
            }
            let Some(row) = self
                .jobs
                .claim(&[JobKind::Build, JobKind::Prepare], &|_| true)
                .map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            tracing::info!(job = %row.id, kind = row.kind.as_str(), "took a job from the fleet's queue");
            let started = match row.kind {
                JobKind::Prepare => {
                    self.builders
                        .start_claimed_prepare(&self.jobs, row, crate::api::prepare_result)
                }
                _ => self.builders.start_claimed(
                    &self.jobs,
                    row,
                    self.bases.clone(),
                    crate::api::build_result,
                ),
            };
            started.map_err(|e| e.to_string())?;
        }
    }

    /// Takes the launches placement gives this host.
    fn take_launches(&self) -> Result<(), String> {
        let me = self.hosts.name();
        for _ in 0..LAUNCHES_PER_LOOK {
            // The board reads the hosts and counts launches: only worth it
            // when a launch waits that this host may take.
            if !self
                .jobs
                .waiting_for_me(JobKind::Launch)
                .map_err(|e| e.to_string())?
            {
                return Ok(());
            }
            let board = self.board().map_err(|e| e.to_string())?;
            let now = crate::store::now();
            let mine = |row: &crate::store::jobs::JobRow| {
                let Ok(queued) = QueuedLaunch::of(row) else {
                    // Whoever takes it fails it with the reason.
                    return true;
                };
                board.takes(
                    me,
                    Wants {
                        needs: queued.needs(),
                        spread: queued.spread(),
                        pinned_here: row.affinity.as_deref() == Some(me),
                        waited: Duration::from_secs((now - row.created_at).max(0) as u64),
                    },
                )
            };
            let Some(row) = self
                .jobs
                .claim(&[JobKind::Launch], &mine)
                .map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            tracing::info!(job = %row.id, "took a launch from the fleet's queue");
            self.launches
                .start_claimed(&self.jobs, row, crate::api::launch_result)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The fleet's seats now, with the launches hosts have taken.
    fn board(&self) -> Result<Board, String> {
        let hosts = self.hosts.list_now().map_err(|e| e.to_string())?;
        let (counts, placed) = self
            .launches
            .catalog
            .with_store(|s| Ok::<_, StoreError>((s.launched_counts()?, s.placed_launches()?)))
            .map_err(|e| e.to_string())?;
        let placed: Vec<(String, Option<String>)> = placed
            .iter()
            .filter_map(|row| {
                let spread = QueuedLaunch::of(row)
                    .ok()
                    .and_then(|q| q.spread().map(str::to_string));
                Some((row.host.clone()?, spread))
            })
            .collect();
        Ok(Board::new(&hosts, &counts, &placed))
    }

    /// Draining: each launched instance is queued to launch elsewhere.
    fn move_launches(&self) -> Result<(), String> {
        let (moved, stay) = self
            .launches
            .move_away(&self.jobs)
            .map_err(|e| e.to_string())?;
        if !moved.is_empty() {
            tracing::info!(
                "draining: {} launched instance(s) queued to launch on other hosts: {}",
                moved.len(),
                moved.join(", ")
            );
        }
        let mut told = self.staying.lock().unwrap_or_else(|p| p.into_inner());
        for id in stay {
            if told.insert(id.clone()) {
                tracing::warn!(
                    "draining: instance {id} boots a kernel file of this host's and stays"
                );
            }
        }
        Ok(())
    }
}
