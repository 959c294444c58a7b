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

/// As root on Linux a dir clone is an overlay mount, not a copy: the
/// clone's writes stay its own, a reboot's lost mount comes back when the
/// driver opens, and destroy leaves no mount and no layers.
#[cfg(target_os = "linux")]
#[test]
fn dir_clones_are_overlays_that_survive_a_lost_mount() {
    use jetpack::names::DatasetName;
    use jetpack::runtime::datasets::Datasets;
    if !common::facility(
        "root (mounts)",
        if nix::unistd::geteuid().is_root() {
            Ok(())
        } else {
            Err("not root".into())
        },
    ) {
        return;
    }
    let mounted = |path: &std::path::Path| -> Option<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let path = path.to_str().unwrap();
        info.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            (fields[4] == path).then(|| fields[dash + 1].to_string())
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let d = DirDatasets::new(dir.path());
    d.init().unwrap();
    let base = DatasetName::new("bases/b1").unwrap();
    let base_path = d.create(&base).unwrap();
    std::fs::write(base_path.join("file"), "base").unwrap();
    d.seal(&base).unwrap();
    let pod = DatasetName::new("pods/p1").unwrap();
    let pod_path = d.clone_sealed(&base, &pod).unwrap();
    assert_eq!(mounted(&pod_path).as_deref(), Some("overlay"));
    std::fs::write(pod_path.join("file"), "pod").unwrap();
    assert_eq!(
        std::fs::read_to_string(base_path.join("file")).unwrap(),
        "base"
    );
    // Its own usage is what it wrote, not the base.
    assert!(d.usage(&pod).unwrap() < 64 * 1024);

    // Opening the driver again in this boot mounts nothing twice.
    let stacked = |path: &std::path::Path| {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .filter(|l| l.split(' ').nth(4) == path.to_str())
            .count()
    };
    DirDatasets::new(dir.path());
    assert_eq!(stacked(&pod_path), 1);
    // A reboot takes the mount (and the boot id changes): opening the
    // driver mounts it again.
    nix::mount::umount(&pod_path).unwrap();
    assert_eq!(mounted(&pod_path), None);
    std::fs::write(dir.path().join("pods/p1.overlay/boot"), "an earlier boot").unwrap();
    let again = DirDatasets::new(dir.path());
    assert_eq!(mounted(&pod_path).as_deref(), Some("overlay"));
    assert_eq!(stacked(&pod_path), 1);
    assert_eq!(
        std::fs::read_to_string(pod_path.join("file")).unwrap(),
        "pod"
    );

    again.destroy(&pod).unwrap();
    assert_eq!(mounted(&pod_path), None);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("pods"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    again.destroy(&base).unwrap();
}
