//! An ISO's contents extracted into a directory (an OS image's new
//! dataset) by bsdtar (libarchive: ISO 9660 with Rock Ridge and Joliet,
//! and UDF) through an argument vector: never a loop mount, never a shell.
//! bsdtar was chosen over a Rust ISO 9660 crate because it is FreeBSD's
//! own tar(1), handles Rock Ridge symlinks, modes and long names and UDF,
//! and already refuses what would escape the target: entries with `..`,
//! absolute paths (both without -P) and writes through symlinks. Symlinks
//! in the ISO are kept as they are; the file server refuses to follow
//! those that lead outside the tree.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::BootFilesError;

/// What of bsdtar's complaints is kept for the error.
const STDERR_MAX: usize = 4096;

/// The program: FreeBSD's tar(1) is bsdtar; Debian's is libarchive-tools'.
fn program() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "tar"
    } else {
        "bsdtar"
    }
}

/// Whether `path` starts like an ISO 9660 or UDF image: the volume
/// descriptor at sector 16 says `CD001` (ISO 9660, also on hybrid UDF
/// discs) or `BEA01` (a UDF volume recognition sequence). bsdtar would
/// unpack a tar or zip as well; an OS image is made from an ISO only.
pub fn looks_like_iso(path: &Path) -> Result<bool, BootFilesError> {
    let file =
        std::fs::File::open(path).map_err(super::io_err(format!("reading {}", path.display())))?;
    let mut id = [0u8; 5];
    match file.read_exact_at(&mut id, 16 * 2048 + 1) {
        Ok(()) => Ok(&id == b"CD001" || &id == b"BEA01"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(super::io_err(format!("reading {}", path.display()))(e)),
    }
}

/// Extracts `iso` into `target` (an empty directory). `cancelled` is asked
/// while it runs; a cancel kills bsdtar.
pub fn extract(
    iso: &Path,
    target: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), BootFilesError> {
    let mut child = Command::new(program())
        .arg("-x")
        .arg("--no-same-owner")
        .arg("-f")
        .arg(iso)
        .arg("-C")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BootFilesError::Extract(format!("cannot run {}: {e}", program())))?;
    // Drained on its own thread so that a chatty bsdtar never blocks on a
    // full pipe; only the first bytes are kept.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut err) = stderr {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = STDERR_MAX.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        kept
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if cancelled() => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(BootFilesError::Cancelled);
            }
            // Extraction takes seconds to minutes: a cancel is seen within
            // a tenth of a second, at no cost worth counting.
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(BootFilesError::Extract(format!("waiting for bsdtar: {e}"))),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&stderr);
    let text = text.trim();
    Err(BootFilesError::Extract(if text.is_empty() {
        format!("bsdtar exited with {status}")
    } else {
        format!("bsdtar exited with {status}: {text}")
    }))
}
