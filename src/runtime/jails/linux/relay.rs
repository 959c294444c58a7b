//! The relay: the middle process between a spawner and a process that
//! enters a cell. setns(CLONE_NEWPID) moves only children into the pod's
//! pid namespace, so `command` forks once more after the setns calls; the
//! relay stays behind, un-exec'd, and mirrors the pod process's exit to the
//! spawner.
//!
//! Everything here runs between fork and exec of a multi-threaded server:
//! raw system calls only, nothing that allocates or locks.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// Waits for `child` and returns its exit as an exit code (128 + signal
/// when killed). Returns 0 at once when `spawner` dies first: a relay is a
/// fork of its spawner (a whole `jetpack serve`) and would otherwise
/// outlive it for as long as the pod's process runs, reporting to nobody.
/// The pod's process goes on, as pods outlive a server by design.
///
/// # Safety
/// Only between fork and exec, in the relay, with `child` its own child.
pub(super) unsafe fn mirror(child: Pid, spawner: libc::pid_t) -> i32 {
    if !child_exits_first(child, spawner) {
        return 0;
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 127,
        }
    }
}

/// Blocks until `child` exits (true) or `spawner` does (false), with a
/// pidfd on each. True too when pidfds are not to be had (kernels before
/// 5.3): the caller then waits for the child alone, as before.
unsafe fn child_exits_first(child: Pid, spawner: libc::pid_t) -> bool {
    let watch = pidfd_open(spawner);
    if watch < 0 {
        return true;
    }
    // Checked after the pidfd is open: a spawner that died before it was
    // (its pid perhaps reused since) has already made this relay an orphan.
    if libc::getppid() != spawner {
        return false;
    }
    let kid = pidfd_open(child.as_raw());
    if kid < 0 {
        return true;
    }
    loop {
        let mut fds = [
            libc::pollfd {
                fd: kid,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: watch,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return true;
        }
        if fds[0].revents != 0 {
            return true;
        }
        if fds[1].revents != 0 {
            return false;
        }
    }
}

unsafe fn pidfd_open(pid: libc::pid_t) -> libc::c_int {
    libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int
}
