//! A CLI command whose standard output is closed early (`jetpack nacl
//! check FILE | head -1`) ends quietly: no panic message, no 101 status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// Runs `jetpack ARGS` in a scratch home, reads one line of its output,
/// closes the pipe and waits: (status code, signal, stderr).
fn into_closed_pipe(args: &[&str], file: &std::path::Path) -> (Option<i32>, Option<i32>, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jetpack"))
        .args(args)
        .arg(file)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .env_remove("JETPACK_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jetpack");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert!(
        first.starts_with("line ") || first.starts_with('{'),
        "{first:?}"
    );
    // As `head -1` does: the reader goes away with most output unread.
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal(), stderr)
}

#[test]
fn nacl_check_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("many.nacl");
    // Far more output than a pipe buffers (64 KiB): one error per line.
    let text: String = (0..20_000).map(|i| format!("x: {i}\n")).collect();
    std::fs::write(&file, text).expect("write");
    for args in [&["nacl", "check"][..], &["-o", "json", "nacl", "check"][..]] {
        let (code, signal, stderr) = into_closed_pipe(args, &file);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: stderr {stderr:?}"
        );
        assert_ne!(code, Some(101), "{args:?}: exit status of a panic");
        // Ended by SIGPIPE, as `cat` would be (or, had it finished first,
        // its own status 1 for a file with errors).
        assert!(
            signal == Some(libc::SIGPIPE) || code == Some(1),
            "{args:?}: code {code:?} signal {signal:?}"
        );
    }
}
