//! The runtime on real ZFS (zfs-fuse): bases are sealed snapshots, pods are
//! O(1) clones of them, and nothing stays behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{Driver, TestHost};

fn zfs_get(property: &str, dataset: &str) -> String {
    let out = Command::new("zfs")
        .args(["get", "-H", "-o", "value", property, dataset])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zfs get {property} {dataset}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn pods_are_clones_whose_writes_stay_in_the_clone() {
    let Some(host) = TestHost::with_busybox(Driver::ZfsCli) else {
        return;
    };
    let root = host.dataset.clone().unwrap();
    let base_id = host.json(&["base", "show", "busybox"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base_ds = format!("{root}/bases/{base_id}");
    assert_eq!(zfs_get("type", &format!("{base_ds}@sealed")), "snapshot");
    // zfs-fuse may report `readonly` as "off (temporary)" while enforcing
    // it; what matters is that the base refuses writes.
    let base_root = host.root.join("bases").join(&base_id);
    let write = std::fs::write(base_root.join("scribble"), b"x");
    assert!(write.is_err(), "the base is writable");

    let id = host
        .ok(&["pod", "create", "busybox", "--name", "writer"])
        .trim()
        .to_string();
    let pod_ds = format!("{root}/pods/{id}");
    assert_eq!(
        zfs_get("origin", &pod_ds),
        format!("{base_ds}@sealed"),
        "a pod is a clone of the sealed base"
    );

    host.ok(&[
        "pod",
        "run",
        "writer",
        "--",
        "/bin/sh",
        "-c",
        "echo written > /etc/pod-note; rm /bin/ls",
    ]);
    let pod_root = host.root.join("pods").join(&id);
    assert_eq!(
        std::fs::read_to_string(pod_root.join("etc/pod-note")).unwrap(),
        "written\n"
    );
    assert!(!pod_root.join("bin/ls").exists());
    assert!(
        !base_root.join("etc/pod-note").exists(),
        "the write reached the base"
    );
    assert!(
        base_root.join("bin/ls").symlink_metadata().is_ok(),
        "the removal reached the base"
    );

    // A second pod starts from the pristine base.
    let out = host.ok(&[
        "pod",
        "run",
        "--rm",
        "busybox",
        "--",
        "/bin/sh",
        "-c",
        "test -e /etc/pod-note && echo leaked || echo clean",
    ]);
    assert_eq!(out.trim(), "clean");

    host.ok(&["pod", "rm", "writer"]);
    host.ok(&["base", "rm", "busybox"]);
    assert!(
        host.leftovers().is_empty(),
        "left behind: {:?}",
        host.leftovers()
    );
}
