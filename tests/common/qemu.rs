//! A VM under qemu (TCG, no display) booted until the test kernel's line
//! is on its serial port: how the disk, ISO and netboot tests see that
//! what jetpack made really boots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Boots qemu with `how` (its drive, cdrom or network arguments) added to
/// a bare TCG machine until `line` is on the serial port (the test
/// kernel then exits qemu through isa-debug-exit); fails the test when
/// qemu ends without it or `within` passes. Returns how long it took.
pub fn boots_to(how: &[&str], dir: &Path, label: &str, line: &str, within: Duration) -> Duration {
    let serial = dir.join(format!("{label}.serial"));
    let _ = std::fs::remove_file(&serial);
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "128", "-display", "none"])
        .args(["-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args(how)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu");
    let started = Instant::now();
    let seen = |serial: &Path| {
        std::fs::read(serial)
            .map(|b| String::from_utf8_lossy(&b).contains(line))
            .unwrap_or(false)
    };
    let printed = || std::fs::read_to_string(&serial).unwrap_or_default();
    loop {
        if seen(&serial) {
            break;
        }
        if let Some(status) = child.try_wait().expect("waiting for qemu") {
            // The line may have been written just before the exit.
            if seen(&serial) {
                break;
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!(
                "{label}: qemu ended ({status}) without the kernel's line; serial: {:?}; stderr: {err}",
                printed()
            );
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label}: no kernel line within {within:?}; serial: {:?}",
                printed()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    started.elapsed()
}

/// The qemu hypervisor base (what launched instances' pods are cloned
/// from), made once by the real script, images/qemu/make.sh.
pub fn base_tarball() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-base");
        let tarball = out.join("qemu.tar.gz");
        if !tarball.exists() {
            let status =
                Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("images/qemu/make.sh"))
                    .arg(&out)
                    .status()
                    .expect("running images/qemu/make.sh");
            assert!(status.success(), "images/qemu/make.sh failed");
        }
        tarball
    })
    .clone()
}
