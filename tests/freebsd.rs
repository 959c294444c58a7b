//! The runtime on a FreeBSD kernel: pods in real jails on libzfs_core
//! clones. Runs in the Vagrant VM (`cargo test --features
//! freebsd-integration,zfs`), as root, with the pool `JETPACK_TEST_POOL`
//! (default `jetpack`) and the base `JETPACK_TEST_BASE` (made by
//! images/freebsd-base/build.sh); type-checked everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(all(
    target_os = "freebsd",
    feature = "freebsd-integration",
    feature = "zfs"
))]

mod common;

use std::process::Command;

use jetpack::runtime::datasets::ZfsDatasets;

fn pool() -> String {
    std::env::var("JETPACK_TEST_POOL").unwrap_or_else(|_| "jetpack".into())
}

struct Host {
    options: Vec<String>,
    root: String,
    _dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/t{}-{tag}", pool(), std::process::id());
        let options = vec![
            "datasets.driver=zfs".to_string(),
            format!("root.zfs={root}"),
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            format!("jail.namePrefix=jpt{}{tag}-", std::process::id()),
            "jail.stop.timeout=2".into(),
        ];
        Host {
            options,
            root,
            _dir: dir,
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(common::JETPACK);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("zfs")
            .args(["destroy", "-r", &self.root])
            .status();
    }
}

#[test]
fn a_pod_runs_in_a_jail_on_a_clone() {
    let host = Host::new("a");
    host.ok(&["init"]);
    let base = common::busybox_tarball();
    host.ok(&["base", "import", base.to_str().unwrap(), "--name", "base"]);
    assert_eq!(
        host.ok(&["pod", "run", "--rm", "base", "--", "/bin/echo", "hi"]),
        "hi\n"
    );
    let id = host
        .ok(&["pod", "create", "base", "--name", "jailed"])
        .trim()
        .to_string();
    host.ok(&["pod", "run", "-d", "jailed", "--", "/bin/sleep", "60"]);
    let jail = format!("jpt{}a-{id}", std::process::id());
    let jls = Command::new("jls")
        .args(["-j", &jail, "host.hostname", "path"])
        .output()
        .unwrap();
    let jls = String::from_utf8_lossy(&jls.stdout);
    assert!(jls.contains("jailed"), "{jls}");
    assert_eq!(
        host.ok(&["pod", "exec", "jailed", "--", "/bin/hostname"])
            .trim(),
        "jailed"
    );
    host.ok(&["pod", "kill", "jailed"]);
    assert!(
        !Command::new("jls")
            .args(["-j", &jail])
            .status()
            .unwrap()
            .success(),
        "the jail is still there"
    );
    host.ok(&["pod", "rm", "jailed"]);
    host.ok(&["base", "rm", "base"]);
}

#[test]
fn libzfs_core_driver_conforms() {
    let root = format!("{}/conformance{}", pool(), std::process::id());
    let mount = tempfile::tempdir().unwrap();
    let datasets = ZfsDatasets::new(&root, mount.path()).unwrap();
    common::conformance::conformance(&datasets);
    let _ = Command::new("zfs").args(["destroy", "-r", &root]).status();
}

#[test]
fn jail_driver_conforms() {
    use jetpack::runtime::jails::FreeBsdJails;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let unpacked = Command::new("tar")
        .arg("-xf")
        .arg(common::busybox_tarball())
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(unpacked.success());
    let pid = std::process::id();
    let prefix = format!("jpj{pid}-");
    let spec = common::jails::spec(
        &format!("{prefix}c1"),
        &root,
        "172.23.250.0/24",
        std::net::Ipv4Addr::new(172, 23, 250, 2),
        "lo1",
    );
    common::jails::conformance(&FreeBsdJails::new(), &FreeBsdJails::new(), &spec, &prefix);
}
