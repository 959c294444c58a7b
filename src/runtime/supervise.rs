//! The supervisor of a detached pod (`jetpack pod __supervise`): it runs
//! the pod's command in its cell with the output appended to the pod's
//! log, forwards the pod's published ports while the pod runs, and when
//! the command ends asks the pod's restart policy whether to run it again,
//! after a backoff, in the same cell. A `pod kill` (the pod's state leaves
//! `running`) ends it at any point; then or when the policy says no more,
//! the cell goes and the pod is recorded as exited.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::restart::Backoff;
use super::{Attach, Host, Pod, RuntimeError};
use crate::net::publish::{Publisher, Running};
use crate::store::PodState;

/// How often a waiting supervisor looks whether its pod was stopped.
const WATCH: Duration = Duration::from_millis(100);

impl Host {
    /// Runs a started pod's `argv` under its restart policy until the
    /// policy or a stop ends it; the last run's exit code.
    pub fn supervise_detached(
        &self,
        pod: &Pod,
        argv: Vec<String>,
        log: PathBuf,
    ) -> Result<i32, RuntimeError> {
        let published = match self.publish(pod, &log) {
            Ok(p) => p,
            Err(e) => {
                let cell = self.running_cell(pod)?;
                let _ = self.jails.destroy(&cell, Duration::ZERO);
                self.store()
                    .pod_finished(&pod.row.id, PodState::Exited, None)?;
                return Err(e);
            }
        };
        let restart = pod.row.policy.restart;
        let mut backoff = Backoff::new();
        let mut ooms = 0;
        let ran = loop {
            let started = Instant::now();
            let ran = self.exec(pod, argv.clone(), Attach::Log(log.clone()));
            if let Some(reason) = self.note_oom(pod, &self.running_cell(pod)?, &mut ooms) {
                note(&log, &reason);
            }
            let code = ran.as_ref().ok().copied();
            if !restart.restarts(code != Some(0)) || !self.still_running(pod)? {
                break ran;
            }
            let wait = backoff.after(started.elapsed());
            note(
                &log,
                &format!(
                    "{}; restart policy {restart}: running it again in {} s",
                    ended(&ran),
                    wait.as_secs()
                ),
            );
            if !self.running_after(pod, wait)? {
                break ran;
            }
            self.store().pod_restarted(&pod.row.id, code)?;
        };
        drop(published);
        let cell = self.running_cell(pod)?;
        let stopped = self.jails.destroy(&cell, self.stop_grace());
        self.store()
            .pod_finished(&pod.row.id, PodState::Exited, ran.as_ref().ok().copied())?;
        stopped?;
        ran
    }

    /// Checks that the pod's published ports can be bound, before its
    /// supervisor is started: a port in use is the caller's error then,
    /// not a line in a log. (Another program may still take it between
    /// this and the supervisor's bind; the supervisor then fails, saying so.)
    pub(super) fn check_published(&self, pod: &Pod) -> Result<(), RuntimeError> {
        let specs = &pod.row.policy.publish;
        if !specs.is_empty() {
            drop(Publisher::bind(specs, std::net::Ipv4Addr::LOCALHOST)?);
        }
        Ok(())
    }

    /// The pod's published ports, forwarded to its address until dropped.
    fn publish(&self, pod: &Pod, log: &Path) -> Result<Option<Running>, RuntimeError> {
        let specs = &pod.row.policy.publish;
        let Some(address) = pod.row.address.filter(|_| !specs.is_empty()) else {
            return Ok(None);
        };
        let publisher = Publisher::bind(specs, address)?;
        for (spec, bound) in publisher.bound() {
            note(
                log,
                &format!(
                    "publishing {bound}/{} to {address}:{}",
                    spec.proto, spec.port
                ),
            );
        }
        Ok(Some(publisher.start()?))
    }

    /// Whether the pod is still wanted running: a `pod kill` moves it to
    /// `stopping` before it ends the pod's processes.
    fn still_running(&self, pod: &Pod) -> Result<bool, RuntimeError> {
        let row = self.store().pod(&pod.row.id)?;
        Ok(row.is_some_and(|r| r.state == PodState::Running))
    }

    /// Waits out a backoff unless the pod is stopped meanwhile; whether it
    /// is still running at the end.
    fn running_after(&self, pod: &Pod, wait: Duration) -> Result<bool, RuntimeError> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !self.still_running(pod)? {
                return Ok(false);
            }
            std::thread::sleep(WATCH.min(deadline.saturating_duration_since(Instant::now())));
        }
        self.still_running(pod)
    }
}

fn ended(ran: &Result<i32, RuntimeError>) -> String {
    match ran {
        Ok(code) => format!("the command exited with {code}"),
        Err(e) => format!("the command failed: {e}"),
    }
}

/// A line of the supervisor's own in the pod's log, beside the pod's
/// output: nobody reads a detached supervisor's stderr.
pub fn note(log: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "jetpack: {line}");
    }
}
