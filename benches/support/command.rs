//! Running a helper program (ip, zfs, tar, a build script...) to the end
//! for a bench (and the tests' fixtures): its stdout, or why it failed. Include it with
//! `#[path = "support/command.rs"] mod command;`.

use std::process::{Command, Stdio};

/// Runs `program` with `args`, stdin closed: its stdout if it succeeds,
/// else the command line and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
