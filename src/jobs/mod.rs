//! Jobs: long operations (import, build, prepare, deploy) that run on a
//! blocking thread while the API answers 202. A job has a row in the store
//! (state, progress, result), a log file under `<data.dir>/jobs/`, and a
//! cancel flag its work checks. Jobs a previous server left unfinished are
//! marked failed at start: their threads died with it.
//!
//! Logs are private files (0600 in a 0700 folder), and every line, error
//! and target has the credentials of the URLs in it masked: a base import
//! from `http://user:pass@host/` must not put the password where any API
//! user can read it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::events::Events;
use crate::names::JobId;
use crate::runtime::fetch_policy::redact_urls;
// The state and kind are the API's words (model::jobs), which the store
// keeps in its columns; this is where the rest of the crate names them.
pub use crate::model::jobs::{JobKind, JobState};
use crate::store::catalog::ListQuery;
use crate::store::jobs::JobRow;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job {0:?}")]
    NotFound(String),
    #[error("job {reference:?} is ambiguous: it matches {count}")]
    Ambiguous { reference: String, count: usize },
    #[error("job {0} has finished; there is nothing to cancel")]
    Finished(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

/// Why a job's work failed: the error its layer made (a build's
/// `BuildError`, with its sources), not flattened to a string on the way;
/// the job records its message, the same text as before. Boxed because the
/// runner serves every layer (jobs sit below build and the hangar), and
/// `?` turns any of their errors, or a plain message, into one.
pub type WorkError = Box<dyn std::error::Error + Send + Sync>;

/// A limit on how many of some kind of work run at once (builds): a slot
/// is held while the work runs, and the rest wait in arrival order... or
/// close to it: a condition variable wakes waiters in no promised order.
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A held slot; dropping it frees it.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    pub fn new(count: usize) -> Slots {
        Slots {
            free: Mutex::new(count.max(1)),
            freed: Condvar::new(),
        }
    }

    /// How many are free now.
    pub fn free(&self) -> usize {
        *self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot; `None` when `cancelled()` said stop first
    /// (`&|| true` only takes a free one).
    pub fn acquire(&self, cancelled: &dyn Fn() -> bool) -> Option<Slot<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *free > 0 {
                *free -= 1;
                return Some(Slot(self));
            }
            if cancelled() {
                return None;
            }
            // Cancellation is a flag, not a notification: look again soon.
            free = self
                .freed
                .wait_timeout(free, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// What a job's work sees: its log, its progress, whether to stop.
pub struct JobContext {
    id: JobId,
    log_path: PathBuf,
    catalog: Arc<Catalog>,
    log: Mutex<File>,
    cancel: Arc<AtomicBool>,
    last_progress: Mutex<(f64, Instant)>,
    kind: JobKind,
    events: Option<Arc<Events>>,
}

impl JobContext {
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The job's log file, for output written by others (a build's pod).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Appends a line to the job's log (and the server's, at debug level),
    /// with the credentials of URLs in it masked.
    pub fn log(&self, line: &str) {
        let line = redact_urls(line);
        tracing::debug!(job = %self.id, "{line}");
        let mut file = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(file, "{line}");
    }

    /// Records progress (0..1); written to the store at most every 250 ms.
    pub fn progress(&self, fraction: f64) {
        let fraction = fraction.clamp(0.0, 1.0);
        let mut last = self.last_progress.lock().unwrap_or_else(|p| p.into_inner());
        if fraction > last.0 && last.1.elapsed() >= Duration::from_millis(250) {
            *last = (fraction, Instant::now());
            let _ = self
                .catalog
                .with_store(|s| s.job_progress(&self.id, fraction));
            self.announce(JobState::Running, fraction);
        }
    }

    fn announce(&self, state: JobState, progress: f64) {
        if let Some(events) = &self.events {
            events.job(
                self.id.as_str(),
                self.kind.as_str(),
                state.as_str(),
                progress,
            );
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

pub struct Jobs {
    catalog: Arc<Catalog>,
    log_dir: PathBuf,
    cancels: Mutex<HashMap<JobId, Arc<AtomicBool>>>,
    /// Where jobs' states and progress are announced.
    events: std::sync::OnceLock<Arc<Events>>,
    /// Told when a job joins the fleet's queue here.
    waiting: tokio::sync::Notify,
    /// Several hosts share the store: work that can run anywhere is queued.
    shared: AtomicBool,
}

fn one(mut found: Vec<JobRow>, reference: &str) -> Result<JobRow, JobError> {
    match found.len() {
        0 => Err(JobError::NotFound(reference.to_string())),
        1 => Ok(found.remove(0)),
        count => Err(JobError::Ambiguous {
            reference: reference.to_string(),
            count,
        }),
    }
}

/// A job was cancelled while it waited for a slot.
struct Cancelled;

/// The slot a job runs in (`None` when it asked for none). Waiting is said
/// in the job's log, or a queued job would look stuck.
fn wait_for_slot<'a>(
    slots: Option<&'a Slots>,
    ctx: &JobContext,
) -> Result<Option<Slot<'a>>, Cancelled> {
    let Some(slots) = slots else {
        return Ok(None);
    };
    if let Some(slot) = slots.acquire(&|| true) {
        return Ok(Some(slot));
    }
    ctx.log("queued: waiting for a free slot");
    slots
        .acquire(&|| ctx.cancelled())
        .map(Some)
        .ok_or(Cancelled)
}

/// A job's row as it is made: queued, nowhere yet.
fn new_row(kind: JobKind, target: Option<String>) -> JobRow {
    JobRow {
        id: JobId::random(),
        kind,
        // The target is often the source URL (an import without a name).
        target: target.map(|t| redact_urls(&t).into_owned()),
        state: JobState::Queued,
        progress: 0.0,
        result: None,
        error: None,
        created_at: store::now(),
        started_at: None,
        finished_at: None,
        host: None,
        spec: None,
        affinity: None,
    }
}

impl Jobs {
    /// Opens the job runner; jobs left unfinished by a previous server fail.
    pub fn open(catalog: Arc<Catalog>, data_dir: &Path) -> Result<Jobs, JobError> {
        let log_dir = data_dir.join("jobs");
        crate::store::private::create_dir(&log_dir).map_err(|source| JobError::Log {
            path: log_dir.display().to_string(),
            source,
        })?;
        let settled = catalog
            .with_store(|s| s.settle_jobs_of(catalog.host(), "the server stopped while it ran"))?;
        if settled.failed > 0 {
            tracing::warn!(
                "{} job(s) were interrupted by the last server stop",
                settled.failed
            );
        }
        if settled.requeued > 0 {
            tracing::info!(
                "{} job(s) taken from the fleet's queue and not started are back in it",
                settled.requeued
            );
        }
        Ok(Jobs {
            waiting: tokio::sync::Notify::new(),
            shared: AtomicBool::new(false),
            catalog,
            log_dir,
            cancels: Mutex::new(HashMap::new()),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Sets where jobs are announced (once; later calls are ignored).
    pub fn publish_to(&self, events: Arc<Events>) {
        let _ = self.events.set(events);
    }

    pub fn log_path(&self, id: &JobId) -> PathBuf {
        self.log_dir.join(format!("{id}.log"))
    }

    pub fn list(&self, q: &ListQuery) -> Result<Vec<JobRow>, JobError> {
        Ok(self.catalog.with_store(|s| s.jobs(q))?)
    }

    pub fn get(&self, reference: &str) -> Result<JobRow, JobError> {
        one(
            self.catalog.with_store(|s| s.find_jobs(reference))?,
            reference,
        )
    }

    /// Queues `work` as a job of `kind` and starts it on a blocking thread.
    /// Its `Ok` value becomes the job's result; an `Err` after a cancel
    /// request makes it cancelled, otherwise failed. The error is the work's
    /// own type (a build's `BuildError`) until the job records its message.
    pub fn submit<F>(
        self: &Arc<Self>,
        kind: JobKind,
        target: Option<String>,
        work: F,
    ) -> Result<JobRow, JobError>
    where
        F: FnOnce(&JobContext) -> Result<serde_json::Value, WorkError> + Send + 'static,
    {
        self.submit_limited(kind, target, None, work)
    }

    /// `submit`, with the job staying queued until one of `slots` is free.
    pub fn submit_limited<F>(
        self: &Arc<Self>,
        kind: JobKind,
        target: Option<String>,
        slots: Option<Arc<Slots>>,
        work: F,
    ) -> Result<JobRow, JobError>
    where
        F: FnOnce(&JobContext) -> Result<serde_json::Value, WorkError> + Send + 'static,
    {
        let row = JobRow {
            host: Some(self.catalog.host().to_string()),
            ..new_row(kind, target)
        };
        self.catalog.with_store(|s| s.insert_job(&row))?;
        self.start(row.clone(), slots, work)?;
        Ok(row)
    }

    /// Puts a job in the fleet's queue, for whichever host takes it first
    /// (`affinity`: only that one) to rebuild its work from `spec`.
    pub fn enqueue(
        &self,
        kind: JobKind,
        target: Option<String>,
        spec: serde_json::Value,
        affinity: Option<String>,
    ) -> Result<JobRow, JobError> {
        let row = JobRow {
            spec: Some(spec),
            affinity,
            ..new_row(kind, target)
        };
        self.catalog.with_store(|s| s.insert_job(&row))?;
        self.waiting.notify_one();
        Ok(row)
    }

    /// Jobs of `kind` this host took from the queue that wait for a slot yet.
    pub fn claimed_waiting(&self, kind: JobKind) -> Result<usize, JobError> {
        Ok(self
            .catalog
            .with_store(|s| s.jobs_waiting_at(self.catalog.host(), kind))?)
    }

    /// Takes the oldest job of `kinds` this host may take from the queue
    /// and `accept`s.
    pub fn claim(
        &self,
        kinds: &[JobKind],
        accept: &dyn Fn(&JobRow) -> bool,
    ) -> Result<Option<JobRow>, JobError> {
        Ok(self
            .catalog
            .with_store(|s| s.claim_job(self.catalog.host(), kinds, accept))?)
    }

    /// Lets any host take a job queued with this host's affinity (held
    /// while this host made ready for it); false if it no longer waits.
    pub fn release(&self, id: &JobId) -> Result<bool, JobError> {
        Ok(self.catalog.with_store(|s| s.release_waiting_job(id))?)
    }

    /// Whether a job of `kind` waits in the queue that this host may take.
    pub fn waiting_for_me(&self, kind: JobKind) -> Result<bool, JobError> {
        Ok(self
            .catalog
            .with_store(|s| s.job_waiting_for(self.catalog.host(), kind))?)
    }

    /// Jobs of `kind` waiting in the queue for this host alone (affinity).
    pub fn held_here(&self, kind: JobKind) -> Result<Vec<JobRow>, JobError> {
        Ok(self
            .catalog
            .with_store(|s| s.jobs_held_for(self.catalog.host(), kind))?)
    }

    /// Several hosts share the store from now on: builds are queued.
    pub fn share(&self) {
        self.shared.store(true, Ordering::Relaxed);
    }

    pub fn shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// Woken when a job is queued here (other hosts' are found by polling).
    pub fn queued_here(&self) -> &tokio::sync::Notify {
        &self.waiting
    }

    /// Runs `work` as the job `row` (stored already, this host's): on a
    /// blocking thread, once one of `slots` is free.
    pub fn start<F>(
        self: &Arc<Self>,
        row: JobRow,
        slots: Option<Arc<Slots>>,
        work: F,
    ) -> Result<(), JobError>
    where
        F: FnOnce(&JobContext) -> Result<serde_json::Value, WorkError> + Send + 'static,
    {
        let kind = row.kind;
        let path = self.log_path(&row.id);
        let log = crate::store::private::file_options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| JobError::Log {
                path: path.display().to_string(),
                source,
            })?;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), cancel.clone());
        let ctx = JobContext {
            id: row.id.clone(),
            log_path: path,
            catalog: self.catalog.clone(),
            log: Mutex::new(log),
            cancel,
            last_progress: Mutex::new((0.0, Instant::now() - Duration::from_secs(1))),
            kind,
            events: self.events.get().cloned(),
        };
        ctx.announce(JobState::Queued, 0.0);
        let jobs = self.clone();
        tokio::task::spawn_blocking(move || jobs.run(ctx, slots.as_deref(), work));
        Ok(())
    }

    fn run<F>(&self, ctx: JobContext, slots: Option<&Slots>, work: F)
    where
        F: FnOnce(&JobContext) -> Result<serde_json::Value, WorkError>,
    {
        let id = ctx.id.clone();
        let slot = wait_for_slot(slots, &ctx);
        let ran = std::time::Instant::now();
        let (state, result, error) = if ctx.cancelled() || slot.is_err() {
            (JobState::Cancelled, None, Some("cancelled".to_string()))
        } else {
            let _ = self.catalog.with_store(|s| s.job_started(&id));
            ctx.announce(JobState::Running, 0.0);
            // A panic in the work is the job's failure, not the server's.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&ctx))) {
                Ok(Ok(value)) => (JobState::Succeeded, Some(value), None),
                // The work's error is typed up to here; the job keeps its message.
                Ok(Err(e)) if ctx.cancelled() => (JobState::Cancelled, None, Some(e.to_string())),
                Ok(Err(e)) => (JobState::Failed, None, Some(e.to_string())),
                Err(_) => (
                    JobState::Failed,
                    None,
                    Some("internal error (a panic; see the server log)".into()),
                ),
            }
        };
        // The error goes to the store too, where `GET /v1/jobs` shows it.
        let error = error.map(|e| redact_urls(&e).into_owned());
        match &error {
            Some(e) => ctx.log(&format!("{}: {e}", state.as_str())),
            None => ctx.log(state.as_str()),
        }
        if let Err(e) = self
            .catalog
            .with_store(|s| s.job_finished(&id, state, result.as_ref(), error.as_deref()))
        {
            tracing::error!(job = %id, "recording the end of a job: {e}");
        }
        let progress = if state == JobState::Succeeded {
            1.0
        } else {
            ctx.last_progress.lock().map(|l| l.0).unwrap_or(0.0)
        };
        ctx.announce(state, progress);
        let seconds = if slot.is_ok() {
            ran.elapsed().as_secs_f64()
        } else {
            0.0
        };
        crate::metrics::figures()
            .jobs
            .ended(ctx.kind, state, seconds);
        // Only now, so the next queued job starts after this one has ended.
        drop(slot);
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Asks a queued or running job to stop; its work ends it as cancelled.
    pub fn cancel(&self, reference: &str) -> Result<JobRow, JobError> {
        let job = self.get(reference)?;
        if job.host.is_none() && self.catalog.with_store(|s| s.cancel_waiting_job(&job.id))? {
            return Ok(job);
        }
        let flag = self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&job.id)
            .cloned();
        match flag {
            Some(flag) if job.state.can_cancel() => {
                flag.store(true, Ordering::Relaxed);
                Ok(job)
            }
            _ => Err(JobError::Finished(job.id.to_string())),
        }
    }
}
