//! One conformance suite for every datasets driver: the same operations and
//! the same errors on plain directories and on real ZFS (zfs-fuse).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::conformance;
use jetpack::runtime::datasets::DirDatasets;
#[cfg(target_os = "linux")]
use jetpack::runtime::datasets::ZfsCliDatasets;

#[test]
fn dir_driver_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&DirDatasets::new(dir.path()));
}

#[cfg(target_os = "linux")]
#[test]
fn zfs_cli_driver_conforms_on_zfs_fuse() {
    if !common::zfs_available() {
        return;
    }
    let root = format!("{}/conformance{}", common::POOL, std::process::id());
    let mount = tempfile::tempdir().unwrap();
    conformance(&ZfsCliDatasets::new(&root, mount.path()));
    // The root is still mounted inside `mount`: destroy it before the
    // temporary directory goes.
    for _ in 0..50 {
        let destroyed = std::process::Command::new("zfs")
            .args(["destroy", "-r", &root])
            .status();
        if destroyed.is_ok_and(|s| s.success()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
