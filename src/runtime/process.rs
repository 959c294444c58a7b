//! Processes in pods, the `Host` verbs that run them: `exec` in a running
//! pod, `run_pod` (start, run attached, stop), `supervise` (its second
//! half, also what a detached pod's supervisor runs), `run_bounded` (a
//! build or a validation: a time limit and a cancel flag) and
//! `run_pod_detached`. A program is looked up inside the pod's root first
//! (`resolve_in_root`), so that a typo fails before anything starts.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::jails::{self, Process};
use super::undo::Undo;
use super::{io_err, terminal, Attach, Ended, Host, Pod, RuntimeError};
use crate::store::private;
use crate::store::PodState;

impl Host {
    /// Checks that `program` exists in the pod before anything starts, so
    /// that a typo fails cleanly instead of leaving a started cell.
    fn check_program(&self, pod: &Pod, program: &str) -> Result<(), RuntimeError> {
        let found = if program.contains('/') {
            resolve_in_root(&pod.root, program).is_some()
        } else {
            jails::base_env("")
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, path)| {
                    path.split(':').any(|dir| {
                        resolve_in_root(&pod.root, &format!("{dir}/{program}")).is_some()
                    })
                })
                .unwrap_or(false)
        };
        if found {
            Ok(())
        } else {
            Err(RuntimeError::CommandNotFound {
                pod: pod.label(),
                program: program.to_string(),
            })
        }
    }

    fn process(&self, pod: &Pod, argv: Vec<String>, terminal: bool) -> Process {
        let own: Vec<(String, String)> = pod.row.env.clone().into_iter().collect();
        // The pod's variables override jetpack's defaults; the metadata
        // URL below is jetpack's to say.
        let mut env = super::env::merge(jails::base_env(&pod.label()), &own);
        if let Some(url) = self.metadata_url(pod) {
            env.push(("AC_METADATA_URL".into(), url));
        }
        if terminal {
            env.push((
                "TERM".into(),
                std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
            ));
        }
        Process {
            argv,
            env,
            terminal,
        }
    }

    /// Runs `argv` in a running pod and waits for it; returns its exit code
    /// (128 + signal when killed).
    pub fn exec(&self, pod: &Pod, argv: Vec<String>, attach: Attach) -> Result<i32, RuntimeError> {
        let cell = self.running_cell(pod)?;
        let program = argv.first().cloned().unwrap_or_default();
        self.check_program(pod, &program)?;
        let terminal = matches!(attach, Attach::Terminal);
        let mut cmd = self
            .jails
            .command(&cell, &self.process(pod, argv, terminal))?;
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe. jetpack's umask (077) is
            // for its own files; a pod's processes get the usual 022. It
            // runs after the jail's own pre_exec, in the pod's process.
            unsafe {
                cmd.pre_exec(|| {
                    libc::umask(0o022);
                    Ok(())
                });
            }
        }
        let spawn_err = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RuntimeError::CommandNotFound {
                    pod: pod.label(),
                    program: program.clone(),
                }
            } else {
                RuntimeError::Spawn {
                    pod: pod.label(),
                    program: program.clone(),
                    source,
                }
            }
        };
        let status = match attach {
            Attach::Inherit => terminal::run_forwarding_signals(cmd, || {
                let _ = self.jails.destroy(&cell, self.stop_grace());
            })
            .map_err(spawn_err)?,
            Attach::Terminal => {
                terminal::run_on_pty(cmd, self.jails.open_pty(&cell)?).map_err(spawn_err)?
            }
            Attach::Log(path) => {
                // A pod's or a build's output: private, like all of
                // jetpack's files.
                let log = private::file_options()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_err(format!("opening {}", path.display())))?;
                let err = log.try_clone().map_err(io_err("duplicating the log"))?;
                cmd.stdin(Stdio::null()).stdout(log).stderr(err);
                cmd.status().map_err(spawn_err)?
            }
        };
        Ok(exit_code(status))
    }

    /// Starts a pod, runs its command (or `argv`) attached, then stops the
    /// cell and records the exit. The pod stays (exited) for another run.
    pub fn run_pod(
        &self,
        pod: &Pod,
        argv: Option<Vec<String>>,
        attach: Attach,
    ) -> Result<i32, RuntimeError> {
        let argv = argv
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| pod.row.command.clone());
        self.check_program(pod, &argv[0])?;
        self.start_pod(pod)?;
        let pod = self.pod(pod.row.id.as_str())?;
        self.supervise(&pod, argv, attach)
    }

    /// The second half of `run_pod`: the pod's cell is running; run `argv`
    /// in it until it ends, then stop the cell and record the exit.
    pub fn supervise(
        &self,
        pod: &Pod,
        argv: Vec<String>,
        attach: Attach,
    ) -> Result<i32, RuntimeError> {
        let log = match &attach {
            Attach::Log(path) => Some(path.clone()),
            _ => None,
        };
        let ran = self.exec(pod, argv, attach);
        let cell = self.running_cell(pod)?;
        if let Some(reason) = self.note_oom(pod, &cell, &mut 0) {
            say_in_log(log.as_deref(), &reason);
        }
        let stopped = self.jails.destroy(&cell, self.stop_grace());
        match &ran {
            Ok(code) => self
                .store()
                .pod_finished(&pod.row.id, PodState::Exited, Some(*code))?,
            Err(_) => self
                .store()
                .pod_finished(&pod.row.id, PodState::Exited, None)?,
        }
        stopped?;
        ran
    }

    /// Starts a pod, runs `argv` in it with its output appended to `log`,
    /// and stops it: a run for work with an end (a build, a validation).
    /// The pod is killed once `limit` has passed or `cancelled()` says so.
    pub fn run_bounded(
        &self,
        pod: &Pod,
        argv: Vec<String>,
        log: &Path,
        limit: Duration,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Ended, RuntimeError> {
        self.check_program(pod, argv.first().map_or("", String::as_str))?;
        let cell = self.start_pod(pod)?;
        let pod = self.pod(pod.row.id.as_str())?;
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let cell_ref = &cell;
        let (ran, stopped_by) = std::thread::scope(|scope| {
            let watchdog = scope.spawn(move || {
                let tick = Duration::from_millis(50);
                loop {
                    let left = limit.saturating_sub(started.elapsed());
                    match finished.recv_timeout(left.min(tick)) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return None,
                    }
                    let why = if cancelled() {
                        Ended::Cancelled
                    } else if started.elapsed() >= limit {
                        Ended::TimedOut
                    } else {
                        continue;
                    };
                    // Ending the cell ends every process in it, so the
                    // exec below returns. Not an undo: the destroy after
                    // the run ends the cell for good and reports its error.
                    let _ = self.jails.destroy(cell_ref, Duration::ZERO);
                    return Some(why);
                }
            });
            let ran = self.exec(&pod, argv, Attach::Log(log.to_path_buf()));
            let _ = done.send(());
            (ran, watchdog.join().ok().flatten())
        });
        if let Some(reason) = self.note_oom(&pod, &cell, &mut 0) {
            say_in_log(Some(log), &reason);
        }
        let stopped = self.jails.destroy(&cell, Duration::ZERO);
        let code = ran.as_ref().ok().copied();
        self.store()
            .pod_finished(&pod.row.id, PodState::Exited, code)?;
        stopped?;
        let code = ran?;
        Ok(stopped_by.unwrap_or(Ended::Exited(code)))
    }

    /// Starts a pod with its command running under a detached supervisor
    /// (`jetpack pod __supervise`), logging to `<data.dir>/logs/<id>.log`.
    pub fn run_pod_detached(
        &self,
        pod: &Pod,
        argv: Option<Vec<String>>,
    ) -> Result<PathBuf, RuntimeError> {
        let argv = argv
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| pod.row.command.clone());
        self.check_program(pod, &argv[0])?;
        self.check_published(pod)?;
        let log = self.pod_log_path(pod);
        if let Some(logs) = log.parent() {
            private::create_dir(logs).map_err(io_err(format!("creating {}", logs.display())))?;
        }
        let cell = self.start_pod(pod)?;
        // Newest first: the cell ends, then the pod is recorded as exited.
        let mut undo = Undo::new();
        undo.push(format!("pod {} recorded as running", pod.label()), || {
            Ok(self
                .store()
                .pod_finished(&pod.row.id, PodState::Exited, None)?)
        });
        undo.push(format!("cell {}", cell.0), || {
            Ok(self.jails.destroy(&cell, Duration::ZERO)?)
        });
        let mut args = vec!["pod", "__supervise", pod.row.id.as_str(), "--"];
        args.extend(argv.iter().map(String::as_str));
        undo.check(self.spawn_detached(&args))?;
        undo.commit();
        Ok(log)
    }

    /// Runs jetpack itself (with this host's configuration) with `args`,
    /// detached in a session of its own, its stdio on /dev/null: the
    /// supervisors of detached pods and launched instances. Returns its pid.
    pub fn spawn_detached(&self, args: &[&str]) -> Result<u32, RuntimeError> {
        let mut cmd = std::process::Command::new(&self.env.exe);
        cmd.args(&self.env.config_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; a new session detaches the
        // supervisor from this terminal.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(io_err(format!(
            "starting the supervisor {}",
            self.env.exe.display()
        )))?;
        let pid = child.id();
        // A long-lived caller (the server) must reap its supervisors; a
        // short one (the CLI) exits and leaves them to init.
        std::thread::spawn(move || child.wait());
        Ok(pid)
    }

    /// Where a detached pod's output goes.
    pub fn pod_log_path(&self, pod: &Pod) -> PathBuf {
        self.config
            .data_dir
            .join("logs")
            .join(format!("{}.log", pod.row.id))
    }
}

/// A line of jetpack's about the pod (its memory limit killed it) where
/// its output goes: the log, or this process's stderr.
fn say_in_log(log: Option<&Path>, line: &str) {
    use std::io::Write;
    match log {
        Some(path) => {
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
                let _ = writeln!(f, "jetpack: {line}");
            }
        }
        None => eprintln!("jetpack: {line}"),
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Follows `path` inside `root` the way the pod will see it: absolute
/// symlinks are taken relative to the pod's root, never the host's.
pub(super) fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut current = PathBuf::from("/");
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let candidate = current.join(&part);
        let host = root.join(candidate.strip_prefix("/").ok()?);
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let target = target.to_str()?;
            if target.starts_with('/') {
                current = PathBuf::from("/");
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        } else {
            current = candidate;
        }
    }
    let host = root.join(current.strip_prefix("/").ok()?);
    host.is_file().then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_inside_the_pod_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", root.join("bin/echo")).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("bin/escape")).unwrap();
        assert!(resolve_in_root(root, "/bin/echo").is_some());
        assert!(resolve_in_root(root, "/bin/sh").is_some());
        assert!(resolve_in_root(root, "/bin/../bin/busybox").is_some());
        // The host's /etc/passwd exists; the pod's does not.
        assert!(resolve_in_root(root, "/bin/escape").is_none());
        assert!(resolve_in_root(root, "/bin/nope").is_none());
        assert!(resolve_in_root(root, "/bin").is_none());
    }
}
