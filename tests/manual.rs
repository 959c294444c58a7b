//! The manual pages and completion scripts as users read and source them:
//! `man -l` renders a page of every visible command, and bash, sourcing
//! the script, completes commands and their flags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::jetpack_bin;

#[test]
fn man_renders_a_page_for_every_visible_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(jetpack_bin())
        .args(["man"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "jetpack.1",
        "jetpack-pod.1",
        "jetpack-pod-run.1",
        "jetpack-serve.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} missing: {pages:?}");
    }
    // Internal commands have no page; nothing staged is left.
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("supervise") || p.starts_with('.')),
        "{pages:?}"
    );
    if !common::tool("man") {
        return;
    }
    let rendered = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("jetpack-pod-run.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    // Bold and underline come as overstrikes (c BACKSPACE c) through a pager.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&rendered.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(text.contains("jetpack-pod-run - Run a pod"), "{text}");
    assert!(text.contains("--restart <POLICY>"), "{text}");
    assert!(
        text.contains("Run a pod (or a new pod from a base)"),
        "{text}"
    );
}

/// What bash offers after `words` (the last one being completed).
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _jetpack jetpack '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_flags() {
    let out = Command::new(jetpack_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("jetpack.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!("source '{}' && complete -p jetpack", script.display()),
        ])
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("_jetpack"),
        "{loaded:?}"
    );
    let top = complete(&script, &["jetpack", "po"]);
    assert!(top.contains(&"pod".to_string()), "{top:?}");
    let sub = complete(&script, &["jetpack", "pod", "r"]);
    assert!(
        sub.contains(&"run".to_string()) && sub.contains(&"rm".to_string()),
        "{sub:?}"
    );
    let flags = complete(&script, &["jetpack", "pod", "run", "--res"]);
    assert_eq!(flags, ["--restart"], "{flags:?}");
    let bad = Command::new(jetpack_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
