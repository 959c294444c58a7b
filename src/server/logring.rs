//! The server's recent log lines, kept in memory for `GET /v1/log`: a
//! writer for tracing's formatter that copies each line to stderr and into
//! a bounded ring.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

pub struct LogRing {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

impl LogRing {
    pub fn new(capacity: usize) -> Arc<LogRing> {
        Arc::new(LogRing {
            capacity: capacity.max(1),
            lines: Mutex::new(VecDeque::new()),
        })
    }

    pub fn push(&self, line: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line.to_string());
    }

    /// The newest `n` lines (all when `None`), oldest first.
    pub fn recent(&self, n: Option<usize>) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let skip = n.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
        lines.iter().skip(skip).cloned().collect()
    }
}

/// One event's formatted text; tracing-subscriber writes it whole.
pub struct Tee {
    ring: Arc<LogRing>,
    buf: Vec<u8>,
}

impl Write for Tee {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        let _ = io::stderr().write_all(&self.buf);
        let text = String::from_utf8_lossy(&self.buf);
        for line in text.lines().filter(|l| !l.is_empty()) {
            self.ring.push(line);
        }
    }
}

/// The writer tracing's formatter is given.
#[derive(Clone)]
pub struct RingWriter(pub Arc<LogRing>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RingWriter {
    type Writer = Tee;
    fn make_writer(&'a self) -> Tee {
        Tee {
            ring: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            ring.push(&i.to_string());
        }
        assert_eq!(ring.recent(None), vec!["2", "3", "4"]);
        assert_eq!(ring.recent(Some(1)), vec!["4"]);
    }
}
