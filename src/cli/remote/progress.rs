//! The progress bar of uploads and downloads (stderr, terminals only).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::cli::output;

// ---- progress --------------------------------------------------------

/// A one-line progress bar on stderr, drawn only when stderr is a
/// terminal (scripts and logs get no carriage returns), at most ten times
/// a second.
pub struct Progress {
    label: String,
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(label: String) -> Progress {
        Progress {
            label,
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: None,
        }
    }

    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let complete = total == Some(done);
        if !complete
            && self
                .last
                .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        eprint!(
            "\r{}\x1b[K",
            progress_line(&self.label, done, total, now.duration_since(self.start))
        );
    }

    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
    }
}

fn progress_line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        format!("{}/s", output::bytes((done as f64 / secs) as u64))
    } else {
        "-".into()
    };
    match total {
        Some(t) if t > 0 => {
            let pct = (done as f64 * 100.0 / t as f64).min(100.0);
            let width = 24usize;
            let filled = ((pct / 100.0) * width as f64) as usize;
            format!(
                "{label} [{}{}] {} / {} {pct:3.0}% {rate}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                output::bytes(done),
                output::bytes(t),
            )
        }
        _ => format!("{label} {} {rate}", output::bytes(done)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        let l = progress_line("pushing f", 512, Some(1024), Duration::from_secs(1));
        assert!(l.contains("512 B / 1.0 KiB"), "{l}");
        assert!(l.contains(" 50%"), "{l}");
        assert!(l.contains("512 B/s"), "{l}");
        let l = progress_line("pulling", 2048, None, Duration::from_secs(2));
        assert_eq!(l, "pulling 2.0 KiB 1.0 KiB/s");
    }
}
