//! The jobs table: a job's row (kind, target, state, progress, result,
//! error, times) in and out, and the SQL form of its state and kind (the
//! words they always were). What a job does and when its state changes is
//! the job runner's business (`jobs`).

use super::sql::{params, DbResult, FromValue, Row, ToValue, Value};

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
    /// The host that runs it (its log is there).
    pub host: Option<String>,
}

fn job_row(r: &Row) -> DbResult<JobRow> {
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
    })
}

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
                 started_at, finished_at, host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                j.host
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

    /// Jobs `host` left queued or running (it stopped, or went down):
    /// they failed with it. Jobs of no host are from before hosts were
    /// recorded, when there was one.
    pub fn fail_unfinished_jobs(&self, host: &str, why: &str) -> Result<usize, StoreError> {
        Ok(self.db.execute(
            "UPDATE jobs SET state = ?3, error = ?1, finished_at = ?2
             WHERE state IN (?4, ?5) AND (host = ?6 OR host IS NULL)",
            params![
                why,
                super::now(),
                JobState::Failed,
                JobState::Queued,
                JobState::Running,
                host
            ],
        )?)
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
        };
        s.insert_job(&job).unwrap();
        // Another host's start leaves it alone; its own host's fails it.
        assert_eq!(s.fail_unfinished_jobs("h2", "server restarted").unwrap(), 0);
        assert_eq!(s.fail_unfinished_jobs("h1", "server restarted").unwrap(), 1);
        let j = &s.find_jobs("0b6c3a5e").unwrap()[0];
        assert_eq!(j.state.as_str(), "failed");
        assert_eq!(j.error.as_deref(), Some("server restarted"));
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
