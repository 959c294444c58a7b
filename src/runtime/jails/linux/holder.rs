//! The holder side of a cell: what runs in `jetpack __cell-init NAME`. It
//! reads the cell's spec from stdin, unshares a pid namespace and forks;
//! the child, PID 1 of that namespace, makes the cell (`setup`), reports
//! `ready` and then only reaps until it is told to end.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::setup;
use crate::runtime::jails::CellSpec;

/// Entry point of the holder process: reads its spec from stdin, reports
/// `pid N` (from the launcher) then `ready` or `error: WHY` (from the
/// holder) on stdout.
pub fn cell_init_main(name: &str) -> i32 {
    let spec: CellSpec = match serde_json::from_reader(std::io::stdin().lock()) {
        Ok(s) => s,
        Err(e) => {
            println!("error: bad cell spec: {e}");
            return 2;
        }
    };
    if spec.name != name {
        println!("error: cell spec names {:?}, not {name:?}", spec.name);
        return 2;
    }
    launch(&spec)
}

/// Unshares a pid namespace and forks the holder into it; reports `pid N`
/// on stdout, as the holder reports `ready` or `error: WHY` there. Runs in
/// a single-threaded process: `__cell-init`, or a fork of a
/// single-threaded spawner (`fork_holder`).
pub(super) fn launch(spec: &CellSpec) -> i32 {
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        println!("error: unshare(CLONE_NEWPID): {e}");
        return 1;
    }
    let _ = std::io::stdout().flush();
    // SAFETY: this process is single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            println!("pid {child}");
            let _ = std::io::stdout().flush();
            0
        }
        Ok(ForkResult::Child) => holder(spec),
        Err(e) => {
            println!("error: fork: {e}");
            1
        }
    }
}

fn holder(spec: &CellSpec) -> ! {
    match setup::setup(spec) {
        Ok(()) => println!("ready"),
        Err(e) => {
            println!("error: {e}");
            end(1);
        }
    }
    let _ = std::io::stdout().flush();
    // The holder lives as long as its cell: what setup freed goes back.
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe { libc::malloc_trim(0) };
    // Nothing of the launcher's stays open in the pod.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                    waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
                {}
            }
            Ok(Signal::SIGTERM | Signal::SIGINT) => end(0),
            _ => {}
        }
    }
}

/// Ends the holder without exit handlers: a holder forked from its spawner
/// (no exec) shares the spawner's libraries, whose handlers are not its own.
fn end(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; nothing is left to unwind.
    unsafe { libc::_exit(code) }
}
