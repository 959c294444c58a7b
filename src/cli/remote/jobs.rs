//! `jobs` and `job`, and following a job to its end (its log copied, then
//! its state), which every command that starts one uses.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::print::*;
use super::CliError;
use crate::cli::output::Format;
use crate::client::{enc, Answer, Client};
use crate::model::jobs::{Job, JobState};

/// `jobs`: the table.
pub fn table(c: &Client, format: Format) -> Result<(), CliError> {
    let a = c.get("/v1/jobs")?;
    list_of(
        format,
        &a,
        &["ID", "KIND", "TARGET", "STATE", "PROGRESS", "CREATED"],
        |j: &Job| {
            vec![
                short(&text(Some(&j.id))),
                text(Some(j.kind.as_str())),
                text(j.target.as_deref()),
                text(Some(j.state.as_str())),
                format!("{:.0}%", j.progress * 100.0),
                ago_at(Some(&j.created)),
            ]
        },
        |j| text(Some(&j.id)),
    )?;
    Ok(())
}

/// `job`: its fields, or its log followed to the end (exit 1 unless it succeeded).
pub fn show(c: &Client, id: String, follow: bool, format: Format) -> Result<i32, CliError> {
    if !follow {
        let a = c.get(&format!("/v1/jobs/{}", enc(&id)))?;
        let j: Job = a.decode()?;
        let fields = vec![
            ("id", text(Some(&j.id))),
            ("kind", text(Some(j.kind.as_str()))),
            ("target", text(j.target.as_deref())),
            ("state", text(Some(j.state.as_str()))),
            // As the JSON spells the number (1.0, 0.25), as before.
            ("progress", Value::from(j.progress).to_string()),
            ("error", text(j.error.as_deref())),
            ("created", text(Some(&j.created))),
            ("started", text(j.started.as_deref())),
            ("finished", text(j.finished.as_deref())),
        ];
        one(format, &a, fields, text(Some(&j.id)))?;
        return Ok(0);
    }
    let job = follow_job(c, &id, &mut std::io::stdout())?;
    let state = text(Some(job.state.as_str()));
    let id = short(&text(Some(&job.id)));
    match &job.error {
        Some(e) => eprintln!("job {id} {state}: {e}"),
        None => eprintln!("job {id} {state}"),
    }
    Ok(if job.state == JobState::Succeeded {
        0
    } else {
        1
    })
}

/// Follows the job `a` answers with (its log to stderr, so that stdout
/// stays the command's answer) and returns it once it succeeded; `doing`
/// names the work in the error when it did not.
pub(super) fn finished_job(c: &Client, a: &Answer, doing: &str) -> Result<Job, CliError> {
    let started: Job = a.decode()?;
    let job = follow_job(c, &started.id, &mut std::io::stderr())?;
    if job.state != JobState::Succeeded {
        return Err(CliError::Failed(format!(
            "{doing} {}: {}",
            text(Some(job.state.as_str())),
            job.error
                .as_deref()
                .unwrap_or("see `jetpack job` for its log")
        )));
    }
    Ok(job)
}

/// Copies a job's log to `out` while it runs, then returns the finished job.
pub(super) fn follow_job(c: &Client, id: &str, out: &mut dyn Write) -> Result<Job, CliError> {
    let path = format!("/v1/jobs/{}", enc(id));
    c.stream_text(&format!("{path}/log"), out)?;
    // The log ends when the job has finished; should the stream end early
    // (a proxy, a restart), wait for the state instead.
    loop {
        let job: Job = c.get_json(&path)?;
        if job.is_finished() {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
