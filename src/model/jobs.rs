//! `/v1/jobs`: a job as the API shows it, and the two words that describe
//! one, its state and its kind. They are defined here, with the wire shape,
//! because the words are the contract: the API writes them, the CLI reads
//! them, and the store keeps the same words in its columns (store/jobs.rs
//! maps them to SQL); the job runner names them as `jobs::{JobState, JobKind}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// Where a job is in its life. Serialized, shown and stored as the
// lower-case word `as_str` gives. (A plain comment: a doc comment would be
// the OpenAPI document's description of the enum, next to the field's.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// What a job does. Serialized and stored as the word `as_str` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Import,
    Build,
    Prepare,
    Deploy,
    Upgrade,
    Launch,
    /// An OS image made from an ISO (download, extract, seal).
    OsImage,
}

/// A word that is no job state or kind this build knows (a database
/// written by a newer jetpack, or edited by hand).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown job {column} {value:?}")]
pub struct UnknownJobValue {
    pub column: &'static str,
    pub value: String,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// A job that will not change any more (nothing left to follow).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether a cancel request can still stop it: queued or running.
    pub fn can_cancel(self) -> bool {
        !self.is_finished()
    }
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Import,
        JobKind::Build,
        JobKind::Prepare,
        JobKind::Deploy,
        JobKind::Upgrade,
        JobKind::Launch,
        JobKind::OsImage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Build => "build",
            JobKind::Prepare => "prepare",
            JobKind::Deploy => "deploy",
            JobKind::Upgrade => "upgrade",
            JobKind::Launch => "launch",
            JobKind::OsImage => "osimage",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = UnknownJobValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownJobValue {
                column: "state",
                value: s.to_string(),
            })
    }
}

impl std::str::FromStr for JobKind {
    type Err = UnknownJobValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownJobValue {
                column: "kind",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// import, build, prepare, deploy...
    // Documented as text, as it always was: the list of kinds grows.
    #[schema(value_type = String)]
    pub kind: JobKind,
    /// What it works on
    pub target: Option<String>,
    /// queued | running | succeeded | failed | cancelled
    #[schema(inline)]
    pub state: JobState,
    /// 0..1
    pub progress: f64,
    pub log_url: String,
    /// What it made (when it succeeded)
    pub result: Option<serde_json::Value>,
    /// Why it failed
    pub error: Option<String>,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The jetpack host that runs it (absent while it waits in the fleet's queue, or on an older server)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Job {
    /// Whether the job has ended (it will not change again).
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_words_are_serialized_as_their_strings() {
        for s in JobState::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_str());
            assert_eq!(serde_json::from_value::<JobState>(json).unwrap(), s);
        }
        for k in JobKind::ALL {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str());
            assert_eq!(serde_json::from_value::<JobKind>(json).unwrap(), k);
        }
        assert!(serde_json::from_str::<JobState>("\"paused\"").is_err());
    }

    #[test]
    fn finished_jobs_cannot_be_cancelled() {
        let finished: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(
            finished,
            [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
        let cancellable: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| s.can_cancel())
            .collect();
        assert_eq!(cancellable, [JobState::Queued, JobState::Running]);
    }
}
