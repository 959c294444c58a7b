//! Processes and jails: entering a jail from a freshly forked child
//! (jail_attach(2) after closing inherited directories) and signalling
//! every process of a jail from a child attached to it.

use std::io;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// Enters jail `jid` from a freshly forked child.
///
/// jail_attach(2) refuses (EPERM) a process that holds any open directory,
/// and a child forked from the multi-threaded server inherits whatever its
/// other threads had open at that instant (read_dir, SQLite's directory
/// fsync), close-on-exec or not. So the child first closes the directories
/// among its descriptors above stdio: it is single-threaded, so the count
/// of open descriptors (kern.proc.nfds) bounds the scan exactly.
///
/// # Safety
///
/// Only in a forked child before exec or _exit: it calls only
/// async-signal-safe functions (sysctl, fstat, close, jail_attach) and does
/// not allocate.
pub(super) unsafe fn attach(jid: i32) -> io::Result<()> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_NFDS];
    let mut open: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    if libc::sysctl(
        mib.as_ptr(),
        mib.len() as libc::c_uint,
        (&mut open as *mut libc::c_int).cast(),
        &mut len,
        std::ptr::null(),
        0,
    ) != 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut seen = 0;
    let mut fd: libc::c_int = 0;
    // The bound only guards against a count that lies.
    while seen < open && fd < 1 << 24 {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 {
            seen += 1;
            if fd > 2 && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                libc::close(fd);
            }
        }
        fd += 1;
    }
    if libc::jail_attach(jid) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` (0 only probes) to every process of jail `jid` from a
/// child attached to it, where kill(-1) reaches exactly the jail's
/// processes. Ok(true) when there was at least one.
pub(super) fn signal_jail(jid: i32, signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: between fork and _exit the child calls only async-signal-safe
    // functions (those of `attach`, kill, _exit); nothing allocates.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe {
            if attach(jid).is_err() {
                libc::_exit(2);
            }
            let code = if libc::kill(-1, signal) == 0 {
                0
            } else if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                1
            } else {
                3
            };
            libc::_exit(code)
        },
        pid => loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(true),
                Ok(WaitStatus::Exited(_, 1)) => return Ok(false),
                Ok(WaitStatus::Exited(_, code)) => {
                    return Err(io::Error::other(format!(
                        "signalling jail {jid}: helper exited {code}"
                    )))
                }
                Ok(WaitStatus::Signaled(..)) => {
                    return Err(io::Error::other("signalling helper was killed"))
                }
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        },
    }
}
