//! ISO files for the boot-file tests and benches: bytes that do not
//! compress, and an ISO 9660 image (Rock Ridge and Joliet) of a folder
//! made by xorriso (Debian's package) through an argument vector.
//! Include it with `#[path = ".../support/iso.rs"]`.

use std::path::Path;
use std::process::Command;

/// Bytes that do not compress (xorshift), the same for the same seed.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    // xorshift stays at zero from zero.
    seed |= 1;
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `iso`, made of the folder `tree`.
pub fn make_iso(tree: &Path, iso: &Path) {
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-R", "-J", "-quiet", "-o"])
        .arg(iso)
        .arg(tree)
        .output()
        .expect("running xorriso");
    assert!(
        out.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
