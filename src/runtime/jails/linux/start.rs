//! Starting a cell's holder, and its report (`pid N`, then `ready` or
//! `error: WHY`).
//!
//! A multi-threaded spawner (the server) execs jetpack as `__cell-init
//! NAME`: between fork and exec it may only make async-signal-safe calls,
//! and the holder's setup (mounts, pivot_root) is not that. A
//! single-threaded spawner (an instance's supervisor, which starts its cell
//! before its first thread) forks the holder without exec: the holder then
//! shares the spawner's pages instead of relocating and initialising a
//! fresh copy of the executable and its libraries, which costs each cell
//! about 1 MiB of private memory (the launch bench's density figure). The
//! forked holder rewrites its command line to `jetpack __cell-init NAME`,
//! which `list` reads, in the spawner's own argv area; where that area is
//! too short it is exec'd like the server's.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

use super::{holder, CELL_INIT};
use crate::runtime::jails::CellSpec;

/// What a holder said while starting.
pub(super) struct Report {
    pub pid: Option<i32>,
    pub outcome: Result<(), String>,
}

pub(super) fn start(helper: &Path, spec: &CellSpec) -> Result<Report, String> {
    if single_threaded() {
        if let Some(area) = ArgvArea::of_this_process() {
            let title = title(&spec.name);
            if title.len() <= area.len {
                return forked(spec, &area, &title);
            }
        }
    }
    exec(helper, spec)
}

/// `jetpack __cell-init NAME`, as `list` expects to read it.
fn title(name: &str) -> Vec<u8> {
    let mut title = Vec::new();
    for arg in ["jetpack", CELL_INIT, name] {
        title.extend_from_slice(arg.as_bytes());
        title.push(0);
    }
    title
}

fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Where this process's command line lives (the kernel's arg_start and
/// arg_end, fields 48 and 49 of /proc/self/stat): what /proc/PID/cmdline
/// shows.
struct ArgvArea {
    start: usize,
    len: usize,
}

impl ArgvArea {
    fn of_this_process() -> Option<ArgvArea> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces: from field 3.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let start: usize = fields.get(48 - 3)?.parse().ok()?;
        let end: usize = fields.get(49 - 3)?.parse().ok()?;
        (start != 0 && end > start).then(|| ArgvArea {
            start,
            len: end - start,
        })
    }

    /// Writes `title` over the area and zeroes the rest.
    ///
    /// # Safety
    /// The area must be this process's argv strings, and nothing may read
    /// them as arguments afterwards (the forked holder never does).
    unsafe fn retitle(&self, title: &[u8]) {
        let at = self.start as *mut u8;
        let n = title.len().min(self.len);
        std::ptr::copy_nonoverlapping(title.as_ptr(), at, n);
        std::ptr::write_bytes(at.add(n), 0, self.len - n);
    }
}

fn forked(spec: &CellSpec, area: &ArgvArea, title: &[u8]) -> Result<Report, String> {
    let (reader, writer) = std::io::pipe().map_err(|e| format!("a report pipe: {e}"))?;
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    let _ = std::io::stdout().flush();
    // SAFETY: checked single-threaded above; the child runs the same code a
    // fresh `__cell-init` would, then _exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: plain descriptor calls on descriptors this process
            // owns; the argv area is this process's and is never read again.
            unsafe {
                libc::setsid();
                libc::dup2(null.as_raw_fd(), 0);
                libc::dup2(writer.as_raw_fd(), 1);
                libc::dup2(null.as_raw_fd(), 2);
                // The spawner's descriptors (its store, its logs) are not
                // the cell's.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                area.retitle(title);
                libc::_exit(holder::launch(spec))
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(writer);
            let report = read_report(reader);
            let _ = waitpid(child, None);
            report
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}

fn exec(helper: &Path, spec: &CellSpec) -> Result<Report, String> {
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(helper);
    // The spec goes through stdin: the command line (visible in the pod's
    // ps) carries only the cell name, which `list` reads back.
    cmd.arg(CELL_INIT)
        .arg(&spec.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe. A new session keeps the holder
    // out of the terminal's signals: ^C on `pod run` ends the app, not the cell.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("running {}: {e}", helper.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A holder that died early shows up below as a missing report.
        let _ = stdin.write_all(json.as_bytes());
    }
    let stdout = child.stdout.take().ok_or("no report pipe")?;
    let report = read_report(stdout);
    let _ = child.wait();
    report
}

fn read_report(from: impl Read) -> Result<Report, String> {
    let mut report = Report {
        pid: None,
        outcome: Err("the holder exited without a report".into()),
    };
    for line in BufReader::new(from).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(p) = line.strip_prefix("pid ") {
            report.pid = p.parse::<i32>().ok();
        } else if line == "ready" {
            report.outcome = Ok(());
        } else if let Some(why) = line.strip_prefix("error: ") {
            report.outcome = Err(why.to_string());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_what_list_reads() {
        let title = title("jetpack-abc");
        let args: Vec<&[u8]> = title.split(|b| *b == 0).collect();
        assert_eq!(args[1], CELL_INIT.as_bytes());
        assert_eq!(args[2], b"jetpack-abc");
    }

    #[test]
    fn this_process_has_an_argv_area() {
        let area = ArgvArea::of_this_process().unwrap();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(area.len, cmdline.len());
    }

    #[test]
    fn reports_are_read_in_order() {
        let r = read_report(&b"pid 42\nready\n"[..]).unwrap();
        assert_eq!((r.pid, r.outcome), (Some(42), Ok(())));
        let r = read_report(&b"pid 7\nerror: no room\n"[..]).unwrap();
        assert_eq!(r.outcome, Err("no room".to_string()));
        let r = read_report(&b""[..]).unwrap();
        assert!(r.pid.is_none() && r.outcome.is_err());
    }
}
