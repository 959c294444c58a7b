//! Owns the server's recent log lines, kept in memory for `GET /v1/log`: a
//! writer for tracing's formatter that copies each line to stderr and into
//! a bounded ring.
//!
//! Logged values often come from clients (user names, ids, paths,
//! headers). So that none can end its line and forge another, or drive a
//! terminal reading stderr, the writer escapes every control character of
//! an event before it goes anywhere: one event is one line, whatever its
//! fields hold. tracing-subscriber formats each event whole into a buffer
//! and hands it to a fresh writer (`make_writer_for` then one `write_all`,
//! fmt_layer.rs `on_event`), and `Tee` keeps everything it is given until
//! it is dropped, so the escaping always sees an event whole: the only
//! newline left raw is the event's last character.

use std::borrow::Cow;
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
        let text = String::from_utf8_lossy(&self.buf);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let line = escape_controls(body);
        let mut out = String::with_capacity(line.len() + 1);
        out.push_str(&line);
        out.push('\n');
        // One write for the whole line, so that lines of events logged at
        // once from several threads do not interleave.
        let _ = io::stderr().lock().write_all(out.as_bytes());
        if !line.is_empty() {
            self.ring.push(&line);
        }
    }
}

/// Whether `c` is shown escaped in the log: C0 (newline and tab too), DEL,
/// C1, and the Unicode characters that break or reorder a line on screen
/// (line and paragraph separators, bidirectional marks and overrides).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with the characters of `must_escape` written as `\x..` (C0 and
/// DEL, ESC among them: `\x1b`) or `\u{..}` (the others).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !must_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
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

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(escape_controls("plain ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\nb\r\tc\x1b[31md\x7fe\u{85}f\u{9b}g\u{2028}h\u{202e}i\0"),
            "a\\x0ab\\x0d\\x09c\\x1b[31md\\x7fe\\u{85}f\\u{9b}g\\u{2028}h\\u{202e}i\\x00"
        );
    }

    #[test]
    fn an_event_is_one_escaped_line_in_the_ring() {
        let ring = LogRing::new(10);
        let writer = RingWriter(ring.clone());
        {
            let mut tee = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            // As a formatter would write an event whose field holds a
            // forged line and a colour escape, in two pieces.
            tee.write_all(b"INFO refused user=eve\nINFO forged\x1b[31m")
                .unwrap();
            tee.write_all(b" done\n").unwrap();
        }
        assert_eq!(
            ring.recent(None),
            vec!["INFO refused user=eve\\x0aINFO forged\\x1b[31m done"]
        );
    }

    #[test]
    fn through_tracing_a_client_value_cannot_forge_a_line() {
        let ring = LogRing::new(10);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(RingWriter(ring.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let name = "eve\n2099-01-01T00:00:00Z  INFO jetpack: forged\x1b[31m";
            tracing::info!(user = %name, "refused");
            tracing::info!("second");
        });
        let lines = ring.recent(None);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("user=eve\\x0a2099-01-01"), "{lines:?}");
        assert!(!lines[0].contains('\x1b'), "{lines:?}");
        assert!(lines[1].ends_with("second"), "{lines:?}");
    }
}
