//! The tools that make a disk (grub-mkrescue, which runs xorriso, and
//! qemu-img), run by argument vector with a time limit: each in its own
//! process group, so that a limit reached kills the tool and whatever it
//! started; stderr kept (its end, bounded) for the error.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How much of a tool's stderr an error keeps: its last words matter.
const STDERR_KEEP: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{command} took longer than {seconds} s and was killed")]
    TimedOut { command: String, seconds: u64 },
}

fn describe<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs `program args...` in `dir` with `TMPDIR=dir` (grub-mkrescue makes
/// its scratch trees there: they go with the staging folder), stdin and
/// stdout closed, for at most `limit`.
pub fn run<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    dir: &Path,
    limit: Duration,
) -> Result<(), RunError> {
    use std::os::unix::process::CommandExt;
    let command = describe(program, args);
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.to_string(),
            source,
        })?;
    // stderr is drained by a thread so that a chatty tool never blocks on
    // a full pipe while we wait for it.
    let reader = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
            kept
        })
    });
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    // A thread waits for the tool; this one waits for that thread's word
    // or the limit, whichever comes first (no polling).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let waited = match rx.recv_timeout(limit) {
        Ok(waited) => waited,
        Err(_) => {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            // Reaped by the waiting thread; its word is not needed.
            let _ = rx.recv();
            return Err(RunError::TimedOut {
                command,
                seconds: limit.as_secs().max(1),
            });
        }
    };
    let status = waited.map_err(|source| RunError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let stderr = reader
        .and_then(|r| r.join().ok())
        .map(|kept| {
            let start = kept.len().saturating_sub(STDERR_KEEP);
            String::from_utf8_lossy(&kept[start..]).trim().to_string()
        })
        .unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(RunError::Failed {
            command,
            status: status.to_string(),
            stderr,
        })
    }
}

/// Whether `program` can be run: a path that exists, or a name on PATH.
pub fn found(program: &str) -> bool {
    crate::runtime::tool::exists(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn failures_carry_stderr_and_limits_kill() {
        let dir = tempfile::tempdir().unwrap();
        run("true", &[] as &[&str], dir.path(), Duration::from_secs(5)).unwrap();
        let err = run(
            "sh",
            &["-c", "echo out; echo 'no such module' >&2; exit 3"],
            dir.path(),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no such module")
                && err.to_string().contains("exit status: 3"),
            "{err}"
        );
        let started = Instant::now();
        let err = run("sleep", &["30"], dir.path(), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let err = run(
            "/nonexistent/tool",
            &[] as &[&str],
            dir.path(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    }
}
