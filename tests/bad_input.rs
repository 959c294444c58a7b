//! Bad input: one clear error line, a non-zero exit, and nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{Driver, TestHost};

/// The visible state of a host: bases, pods and what lies on disk.
fn state(host: &TestHost) -> (String, String, Vec<String>) {
    (
        host.ok(&["base", "list", "-o", "json"]),
        host.ok(&["pod", "list", "-o", "json"]),
        {
            let mut v = host.leftovers();
            v.sort();
            v
        },
    )
}

fn unchanged_after(host: &TestHost, args: &[&str], expect: &str) {
    let before = state(host);
    let err = host.fails(args);
    assert!(
        err.to_lowercase().contains(&expect.to_lowercase()),
        "{args:?}: {err}"
    );
    assert_eq!(state(host), before, "{args:?} changed the host");
}

fn bad_archives(driver: Driver) {
    let Some(host) = TestHost::with_busybox(driver) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    unchanged_after(
        &host,
        &["base", "import", "/nonexistent/base.tar.xz"],
        "cannot read",
    );
    let tarball = std::fs::read(common::busybox_tarball()).unwrap();
    let cut = dir.path().join("cut.tar.xz");
    std::fs::write(&cut, &tarball[..tarball.len() / 2]).unwrap();
    unchanged_after(
        &host,
        &["base", "import", cut.to_str().unwrap(), "--name", "cut"],
        "corrupt",
    );
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"\x1f\x8bthis is not gzip at all").unwrap();
    unchanged_after(
        &host,
        &["base", "import", junk.to_str().unwrap()],
        "corrupt",
    );
    let text = dir.path().join("notes.tar");
    std::fs::write(&text, b"hello").unwrap();
    unchanged_after(
        &host,
        &["base", "import", text.to_str().unwrap()],
        "not a tar archive",
    );
    let good = common::busybox_tarball();
    unchanged_after(
        &host,
        &["base", "import", good.to_str().unwrap(), "--name", "a/b"],
        "'/'",
    );
    unchanged_after(
        &host,
        &["base", "import", good.to_str().unwrap(), "--name", ".."],
        "'..'",
    );
    unchanged_after(
        &host,
        &[
            "base",
            "import",
            good.to_str().unwrap(),
            "--name",
            "x",
            "--sha256",
            &"0".repeat(64),
        ],
        "expected",
    );
    unchanged_after(
        &host,
        &["base", "import", "http://127.0.0.1:9/none.tar.gz"],
        "cannot fetch",
    );
}

#[test]
fn bad_archives_on_dir() {
    bad_archives(Driver::Dir);
}

#[test]
fn bad_archives_on_zfs() {
    bad_archives(Driver::ZfsCli);
}

fn bad_pods(driver: Driver) {
    let Some(host) = TestHost::with_busybox(driver) else {
        return;
    };
    for args in [
        &["pod", "show", "nope"][..],
        &["pod", "kill", "nope"],
        &["pod", "rm", "nope"],
        &["pod", "exec", "nope", "--", "/bin/true"],
        &["pod", "run", "nope"],
        &["pod", "create", "nope"],
        &["base", "rm", "nope"],
    ] {
        unchanged_after(&host, args, "nope");
    }
    unchanged_after(
        &host,
        &[
            "pod",
            "run",
            "--rm",
            "busybox",
            "--",
            "/bin/no-such-command",
        ],
        "not found",
    );
    unchanged_after(
        &host,
        &["pod", "run", "busybox", "--", "no-such-command"],
        "not found",
    );
    unchanged_after(
        &host,
        &["pod", "create", "busybox", "--name", "../etc"],
        "'..'",
    );
    host.ok(&["pod", "create", "busybox", "--name", "once"]);
    unchanged_after(
        &host,
        &["pod", "create", "busybox", "--name", "once"],
        "taken",
    );
    unchanged_after(&host, &["pod", "kill", "once"], "not running");
    unchanged_after(
        &host,
        &["pod", "exec", "once", "--", "/bin/true"],
        "not running",
    );
    unchanged_after(
        &host,
        &["pod", "run", "once", "--", "/bin/nope"],
        "not found",
    );
    host.ok(&["pod", "run", "once", "--", "/bin/true"]);
    unchanged_after(&host, &["pod", "kill", "once"], "not running");
    unchanged_after(&host, &["base", "rm", "busybox"], "in use");
}

#[test]
fn bad_pods_on_dir() {
    bad_pods(Driver::Dir);
}

#[test]
fn bad_pods_on_zfs() {
    bad_pods(Driver::ZfsCli);
}

#[test]
fn a_full_pool_fails_the_import_and_leaves_nothing() {
    let Some(host) = TestHost::new(Driver::ZfsCli) else {
        return;
    };
    host.ok(&["init"]);
    let bases = format!("{}/bases", host.dataset.as_ref().unwrap());
    // The unpacked busybox base needs about 2 MiB.
    assert!(Command::new("zfs")
        .args(["set", "quota=1M", &bases])
        .status()
        .unwrap()
        .success());
    unchanged_after(
        &host,
        &[
            "base",
            "import",
            common::busybox_tarball().to_str().unwrap(),
        ],
        "space",
    );
}

#[test]
fn a_full_file_system_fails_the_import_and_leaves_nothing() {
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    std::fs::create_dir_all(&host.root).unwrap();
    let status = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1500k",
            "jetpack-full",
            host.root.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "mounting a small tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(host.root.clone());
    host.ok(&["init"]);
    unchanged_after(
        &host,
        &[
            "base",
            "import",
            common::busybox_tarball().to_str().unwrap(),
        ],
        "space",
    );
}

#[test]
fn a_bad_configuration_names_file_and_line() {
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("jetpack.conf");
    std::fs::write(&conf, "mds.port = 1104\njail.bogus = 1\n").unwrap();
    let err = host.fails(&["--config", conf.to_str().unwrap(), "config"]);
    assert!(
        err.contains("jetpack.conf:2") && err.contains("jail.bogus"),
        "{err}"
    );
    let err = host.fails(&["-o", "datasets.driver=floppy", "config"]);
    assert!(err.contains("datasets.driver"), "{err}");
    let err = host.fails(&["base", "list"]);
    assert!(err.contains("jetpack init"), "uninitialised host: {err}");
}
