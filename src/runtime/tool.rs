//! Host tools (zfs, ip, cp, ifconfig): a thin, policy-free way to run them
//! with argument vectors and turn a failure into an error that carries the
//! tool's own words. Nothing here ever goes through a shell.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How much of a tool's stderr an error keeps: its last words matter.
const STDERR_KEEP: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
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

impl ToolError {
    /// The tool's complaint, for callers that react to a specific one
    /// (for example zfs-fuse's "dataset is busy").
    pub fn stderr(&self) -> &str {
        match self {
            ToolError::Failed { stderr, .. } => stderr,
            ToolError::Spawn { .. } | ToolError::TimedOut { .. } => "",
        }
    }
}

fn describe<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs `program args...`, returns its stdout; a non-zero exit is an error
/// holding its stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String, ToolError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError::Failed {
            command: describe(program, args),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs a prepared command (one that enters a pod before exec, say) with
/// `input` on its stdin; returns its stdout, or an error holding its
/// stderr and naming it as `what`.
pub fn run_command(mut cmd: Command, what: &str, input: &str) -> Result<String, ToolError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source| ToolError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows as the tool's own complaint below.
        let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError::Failed {
            command: what.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether `program` can be found on PATH (or is a path that exists).
pub fn exists(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Runs `program args...` in `dir` with `TMPDIR=dir` (scratch files go
/// with the caller's staging folder), stdin and stdout closed, for at most
/// `limit`: in its own process group, so that a limit reached kills the
/// tool and whatever it started; the end of its stderr (bounded) is kept
/// for the error.
pub fn run_limited<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    dir: &Path,
    limit: Duration,
) -> Result<(), ToolError> {
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
        .map_err(|source| ToolError::Spawn {
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
            return Err(ToolError::TimedOut {
                command,
                seconds: limit.as_secs().max(1),
            });
        }
    };
    let status = waited.map_err(|source| ToolError::Spawn {
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
        Err(ToolError::Failed {
            command,
            status: status.to_string(),
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn failures_carry_stderr_and_limits_kill() {
        let dir = tempfile::tempdir().unwrap();
        run_limited("true", &[] as &[&str], dir.path(), Duration::from_secs(5)).unwrap();
        let err = run_limited(
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
        let err =
            run_limited("sleep", &["30"], dir.path(), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ToolError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let err = run_limited(
            "/nonexistent/tool",
            &[] as &[&str],
            dir.path(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }), "{err}");
    }
}
