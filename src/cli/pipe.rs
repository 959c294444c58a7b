//! A closed standard output (`jetpack nacl check FILE | head -1`): a CLI
//! command stops quietly instead of panicking in `println!`.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe is an `EPIPE` error,
//! and `println!` panics on it. A command that is only a client (of the
//! API, or of a local file) gets SIGPIPE's default back, and the kernel
//! ends it silently as it does `cat` or `ls`. A command that changes the
//! host keeps SIGPIPE ignored, because it writes to its children's pipes
//! (zfs, nft, a cell's holder) and must see their end as an error and undo
//! its work; for it, the panic of a `println!` into a closed pipe is caught
//! (the stack unwinds, so undo guards run) and ends the command quietly.
//! Daemons (`serve`, `mds`, supervisors) are left alone: their output is a
//! log, and a peer that goes away must never end them.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// The exit status of a command ended by a closed pipe: what a shell
/// reports for one killed by SIGPIPE (128 + 13).
pub const BROKEN_PIPE_STATUS: i32 = 128 + libc::SIGPIPE;

/// How a command treats a closed standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipePolicy {
    /// A client: SIGPIPE's default action.
    Client,
    /// Changes the host: the `println!` panic is caught and quiet.
    Host,
    /// A long-running service: untouched.
    Daemon,
}

/// Runs `f` under `policy`; its exit status, or `BROKEN_PIPE_STATUS` when
/// a host command's output pipe closed.
pub fn run(policy: PipePolicy, f: impl FnOnce() -> i32) -> i32 {
    match policy {
        PipePolicy::Daemon => f(),
        PipePolicy::Client => {
            // SAFETY: setting a signal's disposition to its default is
            // async-signal-safe and done before any thread of ours exists
            // that could rely on SIGPIPE being ignored.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            }
            f()
        }
        PipePolicy::Host => {
            let default = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if !is_broken_pipe(info.payload()) {
                    default(info)
                }
            }));
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(code) => code,
                Err(payload) if is_broken_pipe(payload.as_ref()) => BROKEN_PIPE_STATUS,
                Err(payload) => panic::resume_unwind(payload),
            }
        }
    }
}

/// Whether a panic is std's `println!` failing on a closed pipe.
fn is_broken_pipe(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    // std words it "failed printing to stdout: <the io::Error>", and an
    // io::Error from the OS ends in "(os error N)".
    let epipe = format!("(os error {})", libc::EPIPE);
    message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains(&epipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_print_panic_on_a_closed_pipe_counts() {
        let pipe: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_string());
        assert!(is_broken_pipe(pipe.as_ref()));
        let other: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert!(!is_broken_pipe(other.as_ref()));
        let other_io: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Permission denied (os error 13)".to_string());
        assert!(!is_broken_pipe(other_io.as_ref()));
    }

    #[test]
    fn a_host_command_ends_quietly_on_a_closed_pipe_and_unwinds() {
        struct Undo<'a>(&'a std::cell::Cell<bool>);
        impl Drop for Undo<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let undone = std::cell::Cell::new(false);
        let code = run(PipePolicy::Host, || {
            let _undo = Undo(&undone);
            panic!(
                "failed printing to stdout: Broken pipe (os error {})",
                libc::EPIPE
            )
        });
        assert_eq!(code, BROKEN_PIPE_STATUS);
        assert!(undone.get(), "the stack unwound, so undo guards ran");
        assert_eq!(run(PipePolicy::Host, || 3), 3);
        let other = panic::catch_unwind(|| run(PipePolicy::Host, || panic!("a real bug")));
        assert!(other.is_err(), "any other panic goes on");
    }
}
