//! `jobs` and `job`, and following a job to its end (its log copied, then
//! its state), which every command that starts one uses.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Answer, Client};

/// `jobs`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/jobs")?;
    list(
        format,
        &a,
        &["ID", "KIND", "TARGET", "STATE", "PROGRESS", "CREATED"],
        |j| {
            vec![
                short(&s(j, "id")),
                s(j, "kind"),
                s(j, "target"),
                s(j, "state"),
                format!("{:.0}%", j["progress"].as_f64().unwrap_or(0.0) * 100.0),
                ago(j, "created"),
            ]
        },
    )?;
    Ok(())
}

/// `job`: its fields, or its log followed to the end (exit 1 unless it succeeded).
pub fn show(c: &Client, id: String, follow: bool, format: Format) -> Result<i32, CliError> {
    if !follow {
        let a = c.get(&format!("/v1/jobs/{}", enc(&id)))?;
        let j = &a.value;
        let fields = [
            "id", "kind", "target", "state", "progress", "error", "created", "started", "finished",
        ]
        .into_iter()
        .map(|k| (k, s(j, k)))
        .collect();
        one(format, &a, fields, s(j, "id"))?;
        return Ok(0);
    }
    let job = follow_job(c, &id, &mut std::io::stdout())?;
    let state = s(&job, "state");
    match job["error"].as_str() {
        Some(e) => eprintln!("job {} {state}: {e}", short(&s(&job, "id"))),
        None => eprintln!("job {} {state}", short(&s(&job, "id"))),
    }
    Ok(if state == "succeeded" { 0 } else { 1 })
}

fn is_finished(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// Follows the job `a` answers with (its log to stderr, so that stdout
/// stays the command's answer) and returns it once it succeeded; `doing`
/// names the work in the error when it did not.
pub(super) fn finished_job(c: &Client, a: &Answer, doing: &str) -> Result<Value, CliError> {
    let job = follow_job(c, &s(&a.value, "id"), &mut std::io::stderr())?;
    if s(&job, "state") != "succeeded" {
        return Err(CliError::Failed(format!(
            "{doing} {}: {}",
            s(&job, "state"),
            job["error"]
                .as_str()
                .unwrap_or("see `jetpack job` for its log")
        )));
    }
    Ok(job)
}

/// Copies a job's log to `out` while it runs, then returns the finished job.
pub(super) fn follow_job(c: &Client, id: &str, out: &mut dyn Write) -> Result<Value, CliError> {
    let path = format!("/v1/jobs/{}", enc(id));
    c.stream_text(&format!("{path}/log"), out)?;
    // The log ends when the job has finished; should the stream end early
    // (a proxy, a restart), wait for the state instead.
    loop {
        let job: Value = c.get_json(&path)?;
        if is_finished(job["state"].as_str().unwrap_or("")) {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
