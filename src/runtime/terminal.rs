//! Running a pod's process attached to this terminal: with the streams
//! inherited (signals that would kill jetpack are caught, so it can always
//! clean up after the pod), or on a pseudo-terminal relayed in raw mode
//! (`-t`, the console).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::termios;

use super::jails::Pty;

static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn note_signal(sig: libc::c_int) {
    LAST_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Catches the signals that would end jetpack while a pod runs attached.
/// A handler, not SIG_IGN: ignored signals would be inherited by the pod's
/// process across exec, caught ones are reset to default.
fn catch_signals() {
    let action = SigAction::new(
        SigHandler::Handler(note_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}

/// Spawns `cmd` with this process's streams and waits. SIGINT and SIGQUIT
/// reach the pod's process through the terminal's process group; SIGTERM or
/// SIGHUP sent to jetpack call `stop` (which ends the pod) once.
pub fn run_forwarding_signals(mut cmd: Command, stop: impl Fn()) -> io::Result<ExitStatus> {
    catch_signals();
    let child = cmd.spawn()?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut stopped = false;
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                return Ok(match status {
                    nix::sys::wait::WaitStatus::Exited(_, code) => ExitStatus::from_raw(code << 8),
                    nix::sys::wait::WaitStatus::Signaled(_, sig, _) => {
                        ExitStatus::from_raw(sig as i32)
                    }
                    _ => continue,
                });
            }
            Err(nix::errno::Errno::EINTR) => {
                let sig = LAST_SIGNAL.swap(0, Ordering::SeqCst);
                if !stopped && (sig == libc::SIGTERM || sig == libc::SIGHUP) {
                    stopped = true;
                    stop();
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Puts this terminal in raw mode while alive; restores it on drop.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(s) = &saved {
            let mut raw = s.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), termios::SetArg::TCSANOW, s);
        }
    }
}

/// Runs `cmd` on the pseudo-terminal `pty` (the command's pre_exec makes
/// it the controlling terminal) and relays it to this process's streams.
pub fn run_on_pty(mut cmd: Command, pty: Pty) -> io::Result<ExitStatus> {
    if let Some(ws) = window_size() {
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass.
        unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave: OwnedFd = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    catch_signals();
    let mut child = cmd.spawn()?;
    // The command's copies of the slave are its own now; with ours dropped
    // (moved into cmd), reading the master ends when the command's session does.
    drop(cmd);
    let master = File::from(pty.master);
    let mut to_pty = master.try_clone()?;
    let _raw = RawMode::enter();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut from_pty = master;
    let mut stdout = io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        match from_pty.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let _ = stdout.write_all(&buf[..n]);
                let _ = stdout.flush();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: every slave descriptor is closed, the session is over.
            Err(_) => break,
        }
    }
    child.wait()
}

fn window_size() -> Option<libc::winsize> {
    // SAFETY: an all-zero winsize is valid; TIOCGWINSZ writes into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    ok.then_some(ws)
}
