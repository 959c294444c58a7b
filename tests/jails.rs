//! The jails conformance suite (tests/common/jails.rs) on the Linux driver:
//! namespaces, a busybox root, a bridge of its own. tests/freebsd.rs runs
//! the same suite on jails in the Vagrant VM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[cfg(target_os = "linux")]
#[test]
fn linux_driver_conforms() {
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    use jetpack::runtime::jails::LinuxJails;

    if !common::pods_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let unpacked = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(common::busybox_tarball())
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar");
    assert!(unpacked.success());
    let pid = std::process::id();
    let bridge = format!("jpj{}", pid % 100000);
    // A /24 of its own, apart from TestHost's 10.200-249 ranges.
    let network = format!("10.251.{}.0/24", pid % 250);
    let address = Ipv4Addr::new(10, 251, (pid % 250) as u8, 2);
    let prefix = format!("jpj{pid}-");
    let spec = common::jails::spec(&format!("{prefix}c1"), &root, &network, address, &bridge);
    let helper = PathBuf::from(common::JETPACK);
    let jails = LinuxJails::new(helper.clone());
    let again = LinuxJails::new(helper);
    common::jails::conformance(&jails, &again, &spec, &prefix);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .status();
}
