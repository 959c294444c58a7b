//! `events`: the server's event stream (`GET /v1/events`, Server-Sent
//! Events) printed as it comes, until the server ends it or the reader
//! goes away: a line per event, `-o json` one JSON object per line.

use std::io::Write;

use serde_json::Value;

use super::CliError;
use crate::cli::output::Format;
use crate::client::{Client, ClientError};

/// One event as the stream's lines build it up.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Pending {
    pub(super) id: Option<String>,
    pub(super) event: Option<String>,
    pub(super) data: Vec<String>,
}

/// Reads Server-Sent Events from chunks of text: lines ending in `\n`
/// (or `\r\n`), fields `id`, `event` and `data`, a blank line ending an
/// event, comments (`:`) skipped.
#[derive(Default)]
pub(super) struct SseReader {
    partial: Vec<u8>,
    pending: Pending,
}

impl SseReader {
    pub(super) fn feed(&mut self, chunk: &[u8], each: &mut dyn FnMut(Pending)) {
        self.partial.extend_from_slice(chunk);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::take(&mut self.pending);
                if !event.data.is_empty() || event.event.is_some() {
                    each(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => self.pending.id = Some(value),
                "event" => self.pending.event = Some(value),
                "data" => self.pending.data.push(value),
                _ => {}
            }
        }
    }
}

fn line(event: Pending, format: Format) -> String {
    let kind = event.event.unwrap_or_else(|| "message".into());
    let data = event.data.join("\n");
    match format {
        Format::Json => {
            let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
            let id = event.id.map(Value::String).unwrap_or(Value::Null);
            serde_json::json!({"id": id, "event": kind, "data": data}).to_string()
        }
        Format::Id => event.id.unwrap_or_default(),
        Format::Table => format!("{kind:<16} {data}"),
    }
}

/// `events`: until the server closes the stream.
pub fn follow(c: &Client, format: Format) -> Result<(), CliError> {
    let mut reader = SseReader::default();
    let mut failed = None;
    let mut stdout = std::io::stdout();
    let mut out = Lines(&mut |chunk: &[u8]| {
        reader.feed(chunk, &mut |event| {
            if failed.is_none() {
                let text = line(event, format);
                if let Err(e) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
                    failed = Some(e);
                }
            }
        });
        match failed.take() {
            Some(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    });
    c.stream_text("/v1/events", &mut out)
        .map_err(|e: ClientError| e.into())
        .map(|_| ())
}

/// A writer that hands each write to a function.
pub(super) struct Lines<'a>(pub(super) &'a mut dyn FnMut(&[u8]) -> std::io::Result<()>);

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_comments_skipped() {
        let mut reader = SseReader::default();
        let mut got = Vec::new();
        let text = ": keep-alive\n\nid: 7\nevent: counts\ndata: {\"total\":1}\n\nevent: resy";
        reader.feed(text.as_bytes(), &mut |e| got.push(e));
        reader.feed(b"nc\r\ndata: {}\r\n\r\n", &mut |e| got.push(e));
        assert_eq!(got.len(), 2);
        assert_eq!(
            line(got.remove(0), Format::Json),
            r#"{"data":{"total":1},"event":"counts","id":"7"}"#
        );
        let resync = got.remove(0);
        assert_eq!(resync.id, None);
        assert_eq!(
            line(resync, Format::Table).trim_end(),
            "resync           {}"
        );
    }
}
