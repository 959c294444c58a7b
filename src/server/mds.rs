//! The MDS process of `jetpack serve`: making sure an MDS with this host's
//! keys serves its pods (adopt one found running on its own with these
//! keys, replace any other, else spawn `jetpack mds` on a lifeline), and
//! stopping the one it started when the server ends. The runtime only
//! tells a running MDS of pods (runtime/mds_link.rs); starting a process
//! is the server's.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::mds::control::{self, send, Answer, ControlError, Request};
use crate::mds::lifeline::{self, MdsChild};
use crate::runtime::{Host, RuntimeError};

#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    #[error("the MDS did not start: {0}")]
    Down(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

fn down(e: ControlError) -> MdsError {
    MdsError::Down(e.to_string())
}

/// The MDS this server started, stopped when `serve` returns. Should the
/// server end otherwise (killed, aborted), the MDS ends all the same: its
/// lifeline, a pipe only this process holds open, reaches end-of-file.
pub struct MdsProcess(Option<MdsChild>);

impl Drop for MdsProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            match child.stop() {
                Ok(status) => tracing::info!("the MDS (pid {}) ended: {status}", child.id()),
                Err(e) => tracing::warn!("stopping the MDS (pid {}): {e}", child.id()),
            }
        }
    }
}

/// Makes sure an MDS with `host`'s keys serves its pods, when jetpack.conf
/// has the keys. One found running is adopted (told of every pod) only
/// when it runs on its own (its rc.d script) with these very keys; any
/// other is stopped. Else `jetpack mds` is started, tied to this process
/// so that it ends with it however this process ends, and held by the
/// returned guard, which stops it when dropped.
pub fn start(host: &Host) -> Result<MdsProcess, MdsError> {
    let Some(link) = host.mds_link() else {
        tracing::info!("no MDS: jetpack.conf sets no mds.token-key and mds.signing-key");
        return Ok(MdsProcess(None));
    };
    let socket = link.socket();
    match send(socket, &Request::Status) {
        Ok(Answer::Status(found)) => {
            let pid = found
                .pid
                .map(|p| format!("pid {p}"))
                .unwrap_or_else(|| "pid unknown".into());
            match found.adoptable(link.keys().fingerprint()) {
                Ok(()) => {
                    let pods = host.mds_records()?;
                    tracing::info!(
                        "adopting the MDS found running ({pid}, started on its own, with the keys of jetpack.conf); told it of {} pod(s)",
                        pods.len()
                    );
                    send(socket, &Request::Replace { pods }).map_err(down)?;
                    return Ok(MdsProcess(None));
                }
                Err(why) => {
                    tracing::warn!(
                        "replacing the MDS found running ({pid}): {why}; stopping it and starting this server's own"
                    );
                    control::stop(socket, &found).map_err(down)?;
                }
            }
        }
        Ok(other) => {
            return Err(down(ControlError::Protocol(format!(
                "{other:?} to a status request on {}",
                socket.display()
            ))))
        }
        // Nobody listens: the usual case.
        Err(ControlError::NotRunning { .. }) => {}
        Err(e) => return Err(down(e)),
    }
    let env = host.env();
    let mut cmd = std::process::Command::new(&env.exe);
    cmd.args(&env.config_args).arg("mds").stdout(Stdio::null());
    let mut child = lifeline::spawn(cmd).map_err(|source| MdsError::Io {
        what: "starting jetpack mds",
        source,
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Answer::Status(status)) = send(socket, &Request::Status) {
            // The one that answers must be the one just started (not one
            // that another server started meanwhile).
            if status.pid == Some(child.id()) {
                tracing::info!("started the MDS (pid {}) on {}", child.id(), link.url());
                return Ok(MdsProcess(Some(child)));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(MdsError::Down(format!(
                "jetpack mds exited ({status}); its error is above"
            )));
        }
        if Instant::now() > deadline {
            // Dropping `child` stops it.
            return Err(MdsError::Down("no answer within 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
