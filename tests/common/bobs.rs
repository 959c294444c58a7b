//! The test builder as a bob provider: images/test-builder made into a
//! `local` provider folder by its own build script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `local` provider folder holding the test builder, made by its real
/// build script, once for every test binary: kept under a name derived
/// from images/test-builder's files (a change there makes a new one),
/// made under a lock since test binaries run at once.
pub fn provider_dir() -> PathBuf {
    use sha2::{Digest, Sha256};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/test-builder");
    let mut files = Vec::new();
    let mut pending = vec![src.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("reading images/test-builder") {
            let path = entry.expect("reading images/test-builder").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(
            file.strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update([0]);
        hash.update(std::fs::read(&file).expect("reading images/test-builder"));
        hash.update([0]);
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bobs-{}", hex::encode(&hash.finalize()[..8])));
    // Test binaries run at once: one of them makes it.
    let lock = std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("bobs.lock"))
        .expect("the provider's lock");
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("locking the provider");
    if !out.join("test-builder.tar.gz").exists() {
        let status = Command::new(src.join("make.sh"))
            .arg(&out)
            .status()
            .expect("running images/test-builder/make.sh");
        assert!(status.success(), "images/test-builder/make.sh failed");
    }
    out
}
