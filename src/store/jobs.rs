//! The jobs table: a job's row (kind, target, state, progress, result,
//! error, times) in and out, and the SQL form of its state and kind (the
//! words they always were). What a job does and when its state changes is
//! the job runner's business (`jobs`).

use super::sql::{params, DbResult, FromValue, Row, Sql, ToValue, Value};

use super::catalog::{ListQuery, Table};
use super::{id_of, json_col};
use super::{Store, StoreError};
use crate::model::jobs::UnknownJobValue;
pub use crate::model::jobs::{JobKind, JobState};
use crate::names::JobId;

pub const JOBS: Table = Table {
    name: "jobs",
    search: &["id", "kind", "target", "state"],
    sorts: &[
        ("kind", "kind"),
        ("state", "state"),
        ("created", "created_at"),
    ],
    default_order: "created_at DESC, id",
};

/// Both enums cross the SQL boundary as their words, so the stored values
/// are the strings they always were.
macro_rules! sql_word {
    ($t:ty) => {
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Text(self.as_str().to_string())
            }
        }

        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                String::from_value(v)?
                    .parse()
                    .map_err(|e: UnknownJobValue| e.to_string())
            }
        }
    };
}

sql_word!(JobState);
sql_word!(JobKind);

/// What `settle_jobs_of` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub failed: usize,
    /// Taken from the queue, not started: back in it.
    pub requeued: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: JobId,
    pub kind: JobKind,
    pub target: Option<String>,
    pub state: JobState,
    pub progress: f64,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The host that runs it (its log is there); None while it waits in
    /// the fleet's queue for a host to take it.
    pub host: Option<String>,
    /// What a queued job does, for the host that takes it to rebuild the work.
    pub spec: Option<serde_json::Value>,
    /// The only host that may take it from the queue.
    pub affinity: Option<String>,
}

pub(super) fn job_row(r: &Row) -> DbResult<JobRow> {
    Ok(JobRow {
        id: id_of(r, "id", JobId::new)?,
        kind: r.get("kind")?,
        target: r.get("target")?,
        state: r.get("state")?,
        progress: r.get("progress")?,
        result: json_col(r, "result")?,
        error: r.get("error")?,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        host: r.get("host")?,
        spec: json_col(r, "spec")?,
        affinity: r.get("affinity")?,
    })
}

/// How many of the oldest waiting jobs a claim weighs.
const CLAIM_SCAN: usize = 32;

impl Store {
    pub fn jobs(&self, q: &ListQuery) -> Result<Vec<JobRow>, StoreError> {
        self.list(&JOBS, q, job_row)
    }

    pub fn find_jobs(&self, reference: &str) -> Result<Vec<JobRow>, StoreError> {
        self.find("jobs", reference, job_row)
    }

    pub fn insert_job(&self, j: &JobRow) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO jobs (id, kind, target, state, progress, result, error, created_at,
                 started_at, finished_at, host, spec, affinity)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                j.id.as_str(),
                j.kind,
                j.target,
                j.state,
                j.progress,
                j.result.as_ref().map(|v| v.to_string()),
                j.error,
                j.created_at,
                j.started_at,
                j.finished_at,
                j.host,
                j.spec.as_ref().map(|v| v.to_string()),
                j.affinity
            ],
        )?;
        Ok(())
    }

    pub fn job_started(&self, id: &JobId) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET state = ?3, started_at = ?2 WHERE id = ?1",
            params![id.as_str(), super::now(), JobState::Running],
        )?;
        Ok(())
    }

    pub fn job_progress(&self, id: &JobId, progress: f64) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET progress = ?2 WHERE id = ?1",
            params![id.as_str(), progress],
        )?;
        Ok(())
    }

    pub fn job_finished(
        &self,
        id: &JobId,
        state: JobState,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET state = ?2, result = ?3, error = ?4, finished_at = ?5,
                 progress = CASE WHEN ?6 THEN 1.0 ELSE progress END
             WHERE id = ?1",
            params![
                id.as_str(),
                state,
                result.map(|v| v.to_string()),
                error,
                super::now(),
                state == JobState::Succeeded
            ],
        )?;
        Ok(())
    }

    /// Takes the oldest queued job of `kinds` no host has taken that `host`
    /// may take (no affinity, or its own) and `accept`s (of the oldest
    /// few: placement may leave one for another host): the job is `host`'s
    /// from this transaction on, so no two hosts ever run it.
    pub fn claim_job(
        &self,
        host: &str,
        kinds: &[JobKind],
        accept: &dyn Fn(&JobRow) -> bool,
    ) -> Result<Option<JobRow>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let tx = self.write_tx()?;
        let words: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        // Writers are serialised already (the write lock); SKIP LOCKED
        // says what the claim needs on any PostgreSQL all the same.
        let lock = match self.dialect() {
            super::sql::Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            super::sql::Dialect::Sqlite => "",
        };
        let found = tx.query_map(
            &format!(
                "SELECT * FROM jobs WHERE state = ?1 AND host IS NULL AND kind IN ({})
                 AND (affinity IS NULL OR affinity = ?2)
                 ORDER BY created_at, id LIMIT {CLAIM_SCAN}{lock}",
                words.join(", ")
            ),
            params![JobState::Queued, host],
            job_row,
        )?;
        let Some(mut job) = found.into_iter().find(|j| accept(j)) else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE jobs SET host = ?2 WHERE id = ?1",
            params![job.id.as_str(), host],
        )?;
        tx.commit()?;
        job.host = Some(host.to_string());
        Ok(Some(job))
    }

    /// Jobs of `kind` `host` has taken that have not started (they wait
    /// for a slot).
    pub fn jobs_waiting_at(&self, host: &str, kind: JobKind) -> Result<usize, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT count(*) FROM jobs WHERE host = ?1 AND state = ?2 AND kind = ?3",
            params![host, JobState::Queued, kind],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as usize)
    }

    /// Cancels a job still waiting in the queue (no host has taken it);
    /// false if one has, or it is not queued.
    pub fn cancel_waiting_job(&self, id: &JobId) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "UPDATE jobs SET state = ?2, error = 'cancelled', finished_at = ?3
             WHERE id = ?1 AND state = ?4 AND host IS NULL",
            params![
                id.as_str(),
                JobState::Cancelled,
                super::now(),
                JobState::Queued
            ],
        )? > 0)
    }

    /// Whether a job of `kind` waits in the queue that `host` may take.
    pub fn job_waiting_for(&self, host: &str, kind: JobKind) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM jobs WHERE state = ?1 AND host IS NULL AND kind = ?2
                 AND (affinity IS NULL OR affinity = ?3) LIMIT 1",
                params![JobState::Queued, kind, host],
                |r| r.get::<i64>(0),
            )?
            .is_some())
    }

    /// Jobs of `kind` waiting in the queue for `host` alone (affinity).
    pub fn jobs_held_for(&self, host: &str, kind: JobKind) -> Result<Vec<JobRow>, StoreError> {
        Ok(self.db.query_map(
            "SELECT * FROM jobs WHERE state = ?1 AND host IS NULL AND affinity = ?2 AND kind = ?3
             ORDER BY created_at, id",
            params![JobState::Queued, host, kind],
            job_row,
        )?)
    }

    /// Lets any host take a waiting job that was held for its own host
    /// (`affinity`); false if it is no longer waiting.
    pub fn release_waiting_job(&self, id: &JobId) -> Result<bool, StoreError> {
        Ok(self.db.execute(
            "UPDATE jobs SET affinity = NULL WHERE id = ?1 AND state = ?2 AND host IS NULL",
            params![id.as_str(), JobState::Queued],
        )? > 0)
    }

    /// Jobs `host` left unfinished (it stopped, or went down). Those it
    /// took from the fleet's queue and had not started go back to it, for
    /// any host (nothing of them ran: a retry is safe); the rest failed
    /// with it. Jobs of no host without a spec are from before hosts were
    /// recorded, when there was one; with a spec they wait in the queue,
    /// and stay.
    pub fn settle_jobs_of(&self, host: &str, why: &str) -> Result<Settled, StoreError> {
        let tx = self.write_tx()?;
        let requeued = tx.execute(
            "UPDATE jobs SET host = NULL WHERE host = ?1 AND state = ?2 AND spec IS NOT NULL",
            params![host, JobState::Queued],
        )?;
        let failed = tx.execute(
            "UPDATE jobs SET state = ?3, error = ?1, finished_at = ?2
             WHERE state IN (?4, ?5) AND (host = ?6 OR (host IS NULL AND spec IS NULL))",
            params![
                why,
                super::now(),
                JobState::Failed,
                JobState::Queued,
                JobState::Running,
                host
            ],
        )?;
        tx.commit()?;
        Ok(Settled { failed, requeued })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_jobs_fail_at_restart() {
        let s = Store::in_memory();
        let job = JobRow {
            id: JobId::new("0b6c3a5e-9a4f-4c43-8f53-6f1c1d2e3f40").unwrap(),
            kind: JobKind::Import,
            target: None,
            state: JobState::Running,
            progress: 0.5,
            result: None,
            error: None,
            created_at: 1,
            started_at: Some(1),
            finished_at: None,
            host: Some("h1".into()),
            spec: None,
            affinity: None,
        };
        s.insert_job(&job).unwrap();
        // Another host's start leaves it alone; its own host's fails it.
        assert_eq!(
            s.settle_jobs_of("h2", "server restarted").unwrap().failed,
            0
        );
        assert_eq!(
            s.settle_jobs_of("h1", "server restarted").unwrap().failed,
            1
        );
        let j = &s.find_jobs("0b6c3a5e").unwrap()[0];
        assert_eq!(j.state.as_str(), "failed");
        assert_eq!(j.error.as_deref(), Some("server restarted"));
    }

    fn waiting(id: &str, created_at: i64, affinity: Option<&str>) -> JobRow {
        JobRow {
            id: JobId::new(id).unwrap(),
            kind: JobKind::Build,
            target: None,
            state: JobState::Queued,
            progress: 0.0,
            result: None,
            error: None,
            created_at,
            started_at: None,
            finished_at: None,
            host: None,
            spec: Some(serde_json::json!({"service": "Starbase"})),
            affinity: affinity.map(str::to_string),
        }
    }

    #[test]
    fn each_waiting_job_is_claimed_once_by_a_host_that_may_take_it() {
        let s = Store::in_memory();
        let (a, b, c) = (
            "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-00000000000b",
            "00000000-0000-4000-8000-00000000000c",
        );
        s.insert_job(&waiting(a, 1, None)).unwrap();
        s.insert_job(&waiting(b, 2, Some("h2"))).unwrap();
        s.insert_job(&waiting(c, 3, None)).unwrap();
        assert!(s
            .claim_job("h1", &[JobKind::Prepare], &|_| true)
            .unwrap()
            .is_none());
        let first = s
            .claim_job("h1", &[JobKind::Build], &|_| true)
            .unwrap()
            .unwrap();
        assert_eq!((first.id.as_str(), first.host.as_deref()), (a, Some("h1")));
        assert_eq!(first.spec.unwrap()["service"], "Starbase");
        // b is h2's alone: h1 takes c next, then nothing.
        let second = s
            .claim_job("h1", &[JobKind::Build], &|_| true)
            .unwrap()
            .unwrap();
        assert_eq!(second.id.as_str(), c);
        assert!(s
            .claim_job("h1", &[JobKind::Build], &|_| true)
            .unwrap()
            .is_none());
        // Another host's end fails none of them: b waits for any host.
        let none = Settled {
            failed: 0,
            requeued: 0,
        };
        assert_eq!(s.settle_jobs_of("h3", "gone").unwrap(), none);
        // A claimed job cannot be cancelled as waiting; b still can.
        assert!(!s.cancel_waiting_job(&first.id).unwrap());
        assert!(s.cancel_waiting_job(&JobId::new(b).unwrap()).unwrap());
        assert!(s
            .claim_job("h2", &[JobKind::Build], &|_| true)
            .unwrap()
            .is_none());
        assert_eq!(s.find_jobs(b).unwrap()[0].state, JobState::Cancelled);
        // h1 took a and c and started neither: when h1 ends, both go back
        // to the queue (nothing of them ran: a retry is safe), for any host.
        let back = s.settle_jobs_of("h1", "h1 went down").unwrap();
        assert_eq!(
            back,
            Settled {
                failed: 0,
                requeued: 2
            }
        );
        let again = s
            .claim_job("h4", &[JobKind::Build], &|_| true)
            .unwrap()
            .unwrap();
        assert_eq!(again.id.as_str(), a);
    }

    #[test]
    fn a_claim_passes_over_what_placement_leaves_to_another_host() {
        let s = Store::in_memory();
        let (a, b) = (
            "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-00000000000b",
        );
        s.insert_job(&waiting(a, 1, None)).unwrap();
        s.insert_job(&waiting(b, 2, None)).unwrap();
        let not_a = |j: &JobRow| j.id.as_str() != a;
        let taken = s
            .claim_job("h1", &[JobKind::Build], &not_a)
            .unwrap()
            .unwrap();
        assert_eq!(taken.id.as_str(), b);
        assert!(s
            .claim_job("h1", &[JobKind::Build], &not_a)
            .unwrap()
            .is_none());
        assert_eq!(s.jobs_waiting_at("h1", JobKind::Build).unwrap(), 1);
        assert_eq!(s.jobs_waiting_at("h1", JobKind::Launch).unwrap(), 0);
        let rest = s
            .claim_job("h2", &[JobKind::Build], &|_| true)
            .unwrap()
            .unwrap();
        assert_eq!(rest.id.as_str(), a);
        assert!(!s.release_waiting_job(&rest.id).unwrap());
        // Held for h9, then let go: any host takes it.
        let c = "00000000-0000-4000-8000-00000000000c";
        s.insert_job(&waiting(c, 3, Some("h9"))).unwrap();
        assert!(s
            .claim_job("h1", &[JobKind::Build], &|_| true)
            .unwrap()
            .is_none());
        assert!(s.job_waiting_for("h9", JobKind::Build).unwrap());
        assert!(!s.job_waiting_for("h9", JobKind::Launch).unwrap());
        assert!(!s.job_waiting_for("h1", JobKind::Build).unwrap());
        let held = s.jobs_held_for("h9", JobKind::Build).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].id.as_str(), c);
        assert!(s.jobs_held_for("h9", JobKind::Launch).unwrap().is_empty());
        assert!(s.release_waiting_job(&JobId::new(c).unwrap()).unwrap());
        assert!(s.jobs_held_for("h9", JobKind::Build).unwrap().is_empty());
        assert!(s.job_waiting_for("h1", JobKind::Build).unwrap());
        let freed = s
            .claim_job("h1", &[JobKind::Build], &|_| true)
            .unwrap()
            .unwrap();
        assert_eq!(freed.id.as_str(), c);
        assert!(!s.job_waiting_for("h1", JobKind::Build).unwrap());
    }

    #[test]
    fn job_words_are_the_stored_strings() {
        let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            states,
            ["queued", "running", "succeeded", "failed", "cancelled"]
        );
        let kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["import", "build", "prepare", "deploy", "upgrade", "launch", "osimage"]
        );
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
        }
    }

    #[test]
    fn an_unknown_stored_job_state_is_an_error() {
        let s = Store::in_memory();
        s.db.execute(
            "INSERT INTO jobs (id, kind, target, state, progress, created_at)
                 VALUES ('1d9b6f2e-5c3a-4e8b-9f10-2a3b4c5d6e7f', 'import', NULL, 'paused', 0, 1)",
            params![],
        )
        .unwrap();
        let err = s.find_jobs("1d9b6f2e").unwrap_err().to_string();
        assert!(err.contains("unknown job state \"paused\""), "{err}");
    }
}
