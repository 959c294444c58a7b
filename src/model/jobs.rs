//! `/v1/jobs`: a job as the API shows it. `kind` and `state` stay text
//! on the wire (and here); the server's own types for them are below the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// import, build, prepare, deploy...
    pub kind: String,
    /// What it works on
    pub target: Option<String>,
    /// queued | running | succeeded | failed | cancelled
    pub state: String,
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
}

impl Job {
    /// Whether the job has ended (it will not change again).
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}
