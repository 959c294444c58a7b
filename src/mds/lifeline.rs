//! How an MDS that `jetpack serve` starts ends with that server, however
//! the server ends (a clean stop, a panic, `kill -9`): the server keeps the
//! write end of a pipe whose read end is the MDS's stdin, and the MDS stops
//! when it reads end-of-file there, which the kernel gives it as soon as no
//! process holds the write end any more.
//!
//! Not the parent-death signal: Linux clears PR_SET_PDEATHSIG when a
//! process changes its credentials (which the MDS does, dropping to
//! `mds.user`), sends it when the *thread* that spawned the child ends
//! (not the process), and FreeBSD has it only as procctl(2). A pipe is a
//! process-wide descriptor on both, untouched by setuid. The write end is
//! close-on-exec, so the server's other children (pods, supervisors,
//! hypervisors) do not hold it and keep an orphaned MDS alive.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of an MDS a server starts: that server's pid.
/// Its stdin is then the lifeline.
pub const ENV: &str = "JETPACK_MDS_LIFELINE";

/// How long an MDS whose lifeline closed may take to exit before its
/// server kills it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// An MDS this process started, tied to it by the lifeline. Dropping it
/// stops the MDS (`stop`).
pub struct MdsChild {
    process: Child,
    /// The pipe's write end: closing it tells the MDS to end.
    lifeline: Option<std::io::PipeWriter>,
}

/// Starts `cmd` (a `jetpack mds` command line) as an MDS that ends with
/// this process. `cmd`'s stdin is taken for the lifeline.
pub fn spawn(mut cmd: Command) -> std::io::Result<MdsChild> {
    // Both ends are close-on-exec; the child's copy of the read end, as
    // its stdin, is not.
    let (read, write) = std::io::pipe()?;
    cmd.stdin(Stdio::from(read))
        .env(ENV, std::process::id().to_string());
    let process = cmd.spawn()?;
    // `cmd` holds this process's read end until it is dropped here.
    drop(cmd);
    Ok(MdsChild {
        process,
        lifeline: Some(write),
    })
}

impl MdsChild {
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.process.try_wait()
    }

    /// Ends the MDS: closes the lifeline, which it answers by draining its
    /// connections and exiting, and kills it when it takes longer than
    /// `STOP_GRACE`. Returns how it ended; idempotent.
    pub fn stop(&mut self) -> std::io::Result<ExitStatus> {
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            if let Some(status) = self.process.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "the MDS (pid {}) did not end within {STOP_GRACE:?}; killing it",
                    self.process.id()
                );
                self.process.kill()?;
                return self.process.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MdsChild {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("stopping the MDS (pid {}): {e}", self.process.id());
        }
    }
}

/// In the MDS: the pid of the server that started it and holds its
/// lifeline, or None when it was started on its own (its rc.d script, or
/// by hand), which has no lifeline.
pub fn started_by() -> Option<u32> {
    parse_started_by(std::env::var_os(ENV)?.to_str()?)
}

fn parse_started_by(value: &str) -> Option<u32> {
    value.trim().parse().ok().filter(|pid| *pid > 0)
}

/// In the MDS: calls `on_end` from a thread of its own once `lifeline`
/// (its stdin) reaches end-of-file or fails, i.e. once the server that
/// started it has ended. Whatever is written on it is ignored.
pub fn watch(
    mut lifeline: impl Read + Send + 'static,
    on_end: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mds-lifeline".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match lifeline.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            on_end();
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;

    #[test]
    fn the_starting_server_is_a_positive_pid() {
        assert_eq!(parse_started_by("4242"), Some(4242));
        assert_eq!(parse_started_by(" 7\n"), Some(7));
        assert_eq!(parse_started_by("0"), None);
        assert_eq!(parse_started_by("-1"), None);
        assert_eq!(parse_started_by("server"), None);
        assert_eq!(parse_started_by(""), None);
    }

    #[test]
    fn the_watcher_ends_at_end_of_file_not_before() {
        let (read, mut write) = std::io::pipe().unwrap();
        let (tx, rx) = mpsc::channel();
        watch(read, move || tx.send(()).unwrap()).unwrap();
        write.write_all(b"anything").unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "data is no end"
        );
        drop(write);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the end of the lifeline is seen");
    }

    #[test]
    fn a_child_sees_the_lifeline_end_when_it_is_stopped() {
        // As the MDS: the server's pid in its environment, then it waits
        // for end-of-file on stdin and exits 0.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!("test \"${ENV}\" = {} && cat >/dev/null", std::process::id()),
        ]);
        let mut child = spawn(cmd).unwrap();
        assert!(child.try_wait().unwrap().is_none(), "it waits on stdin");
        let status = child.stop().unwrap();
        assert!(status.success(), "{status}");
        assert_eq!(child.stop().unwrap().code(), Some(0), "idempotent");
    }
}
