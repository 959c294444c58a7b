//! An instance's console log: what its serial port printed, appended by the
//! supervisor, bounded on disk (one rotation: `NAME.log` and `NAME.log.1`,
//! each at most `launch.console.bytes`), and read back by `tail`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::private;

/// Where an instance's console log lives.
pub fn path(data_dir: &Path, instance_id: &str) -> PathBuf {
    data_dir.join("consoles").join(format!("{instance_id}.log"))
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// The writing end, owned by the supervisor.
pub struct ConsoleLog {
    path: PathBuf,
    file: File,
    written: u64,
    max: u64,
}

impl ConsoleLog {
    pub fn open(path: PathBuf, max: u64) -> std::io::Result<ConsoleLog> {
        if let Some(dir) = path.parent() {
            private::create_dir(dir)?;
        }
        let file = private::file_options()
            .create(true)
            .append(true)
            .open(&path)?;
        let written = file.metadata()?.len();
        Ok(ConsoleLog {
            path,
            file,
            written,
            max,
        })
    }

    /// Appends `bytes`, rotating first when they would take the file past
    /// its bound.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.written > 0 && self.written + bytes.len() as u64 > self.max {
            std::fs::rename(&self.path, rotated(&self.path))?;
            self.file = private::file_options()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.written = 0;
        }
        // A single write bigger than the bound keeps only its end.
        let keep = bytes.len().saturating_sub(self.max as usize);
        self.file.write_all(&bytes[keep..])?;
        self.written += (bytes.len() - keep) as u64;
        Ok(())
    }

    /// A line of jetpack's own, told apart from the guest's output.
    pub fn note(&mut self, line: &str) -> std::io::Result<()> {
        self.write(format!("[jetpack] {line}\n").as_bytes())
    }
}

/// The last `max` bytes of the log (across the rotation), starting at a
/// line when it had to cut; and the offset in the current file where the
/// reading ended, for a follower to go on from.
pub fn tail(path: &Path, max: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut current = Vec::new();
    let end = match File::open(path) {
        Ok(mut f) => {
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
            f.take(max).read_to_end(&mut current)?;
            len
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let short = max.saturating_sub(current.len() as u64);
    if short > 0 {
        if let Ok(mut old) = File::open(rotated(path)) {
            let len = old.metadata()?.len();
            old.seek(SeekFrom::Start(len.saturating_sub(short)))?;
            old.take(short).read_to_end(&mut out)?;
        }
    }
    let cut = out.len() as u64 + current.len() as u64 >= max;
    out.extend_from_slice(&current);
    if cut {
        if let Some(nl) = out.iter().position(|&b| b == b'\n') {
            out.drain(..=nl);
        }
    }
    Ok((out, end))
}

/// What was appended since `offset` (at most `max` bytes), and the new
/// offset; a rotation since then starts again at the new file's start.
pub fn read_from(path: &Path, offset: u64, max: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))?;
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok((out.clone(), from + out.len() as u64))
}

/// Removes an instance's console logs.
pub fn remove(path: &Path) {
    for p in [path.to_path_buf(), rotated(path)] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stays_bounded_and_tail_reads_across_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "abc");
        let mut log = ConsoleLog::open(path.clone(), 64).unwrap();
        for i in 0..40 {
            log.write(format!("line {i:02}\n").as_bytes()).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 64, "current {}", size(&path));
        assert!(size(&rotated(&path)) <= 64);
        let (tail_bytes, end) = tail(&path, 40).unwrap();
        let text = String::from_utf8(tail_bytes).unwrap();
        assert!(text.ends_with("line 39\n"), "{text:?}");
        assert!(text.starts_with("line "), "cut at a line start: {text:?}");
        assert_eq!(end, size(&path));
        // The whole of both files when asked for more than they hold.
        let (all, _) = tail(&path, 1000).unwrap();
        assert_eq!(all.len() as u64, size(&path) + size(&rotated(&path)));
        log.note("qemu ended").unwrap();
        let (new, next) = read_from(&path, end, 1000).unwrap();
        assert_eq!(new, b"[jetpack] qemu ended\n");
        assert_eq!(next, size(&path));
        // A write over the bound keeps its end only.
        log.write(&[b'x'; 100]).unwrap();
        assert_eq!(size(&path), 64);
        remove(&path);
        assert!(!path.exists() && !rotated(&path).exists());
    }
}
