//! Multipart forms as they stream in: the boundary of the Content-Type, and
//! `FormGuard`, which follows the body byte by byte as the parser (multer)
//! will read it and refuses what the parser would buffer without bound (a
//! long preamble, padding or part header block, too many parts). Pure but
//! for the stream around it; the handler's side is upload.rs.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{BodyDataStream, Bytes};
use axum::http::StatusCode;
use futures_util::{Stream, StreamExt};

use super::upload::linger;
use super::{ApiError, ApiResult};

/// The most parts a form may have: one file and a few fields are all any
/// upload takes.
pub const PARTS_MAX: usize = 16;
/// The longest header block of one part (Content-Disposition with a file
/// name, Content-Type), as the parser buffers it whole.
pub const PART_HEAD_MAX: usize = 8192;
/// The most bytes before the first boundary, or of padding after one,
/// which the parser also buffers whole while it looks for the end.
const PREAMBLE_MAX: usize = 4096;

/// The boundary of a `multipart/form-data` Content-Type, as RFC 2046 allows
/// it (1 to 70 of its characters, not ending in a space), quoted or not.
pub(super) fn form_boundary(content_type: &str) -> ApiResult<String> {
    let bad = |why: &str| ApiError::bad_request(format!("bad multipart Content-Type: {why}"));
    let value = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| bad("no boundary"))?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted
            .strip_suffix('"')
            .ok_or_else(|| bad("an unclosed quote in the boundary"))?,
        None => value,
    };
    let bchar = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    if value.is_empty() || value.len() > 70 || value.ends_with(' ') || !value.bytes().all(bchar) {
        return Err(bad(
            "the boundary must be 1 to 70 letters, digits or '()+_,-./:=? (RFC 2046)",
        ));
    }
    Ok(value.to_string())
}

/// Follows a multipart body as it streams, byte by byte as the parser will
/// read it (multer: the first `--BOUNDARY` anywhere, then transport
/// padding and CRLF, a header block up to CRLF CRLF, data up to
/// CRLF `--BOUNDARY`, `--` after one to end), and refuses a body whose
/// preamble, padding or header block is too long or that has too many
/// parts: the places where the parser would buffer without bound. Data is
/// not bounded here (the file's limit and `FIELD_MAX` are enforced by the
/// reader); finding its end costs one comparison per byte.
struct FormScan {
    stage: Stage,
    /// `--BOUNDARY` before the first part; `\r\n--BOUNDARY` after one.
    first: Finder,
    delimiter: Finder,
    head_end: Finder,
    /// Bytes of the current preamble, padding or header block.
    run: usize,
    parts: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Preamble,
    /// Just after a delimiter: `--` ends the form, else padding then CRLF.
    Delimited,
    /// After a delimiter, a `-`: the second makes the close delimiter.
    Dash,
    Padding,
    /// Padding ended with CR; LF starts the part's headers.
    Cr,
    Head,
    Data,
    /// Closed, or something the parser refuses itself: nothing to bound.
    Done,
}

impl FormScan {
    fn new(boundary: &str) -> FormScan {
        FormScan {
            stage: Stage::Preamble,
            first: Finder::new(format!("--{boundary}").into_bytes()),
            delimiter: Finder::new(format!("\r\n--{boundary}").into_bytes()),
            head_end: Finder::new(b"\r\n\r\n".to_vec()),
            run: 0,
            parts: 0,
        }
    }

    /// Follows `bytes`; an error once the form is over a bound.
    fn feed(&mut self, bytes: &[u8]) -> ApiResult<()> {
        let mut i = 0;
        while i < bytes.len() {
            match self.stage {
                Stage::Done => return Ok(()),
                Stage::Data => {
                    // Most of a form is data: jump to where the delimiter
                    // could start unless one is partly matched already.
                    if self.delimiter.at == 0 {
                        match bytes[i..].iter().position(|&b| b == b'\r') {
                            Some(skip) => i += skip,
                            None => return Ok(()),
                        }
                    }
                    if self.delimiter.step(bytes[i]) {
                        self.enter(Stage::Delimited);
                    }
                }
                Stage::Preamble => {
                    self.count(PREAMBLE_MAX, "before the first boundary")?;
                    if self.first.step(bytes[i]) {
                        self.enter(Stage::Delimited);
                    }
                }
                Stage::Delimited | Stage::Dash | Stage::Padding | Stage::Cr => {
                    self.count(PREAMBLE_MAX, "of padding after a boundary")?;
                    let next = match (self.stage, bytes[i]) {
                        (Stage::Delimited, b'-') => Stage::Dash,
                        (Stage::Dash, b'-') => Stage::Done,
                        (Stage::Delimited | Stage::Padding, b' ' | b'\t') => Stage::Padding,
                        (Stage::Delimited | Stage::Padding, b'\r') => Stage::Cr,
                        (Stage::Cr, b'\n') => {
                            self.parts += 1;
                            if self.parts > PARTS_MAX {
                                return Err(ApiError::new(
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    "too_large",
                                    format!("the form has more than {PARTS_MAX} parts"),
                                ));
                            }
                            Stage::Head
                        }
                        // The parser refuses this itself.
                        _ => Stage::Done,
                    };
                    if next != self.stage {
                        self.enter(next);
                    }
                }
                Stage::Head => {
                    self.count(PART_HEAD_MAX, "in the headers of a part")?;
                    if self.head_end.step(bytes[i]) {
                        self.enter(Stage::Data);
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    fn enter(&mut self, stage: Stage) {
        // Padding continues the run of bytes after the delimiter.
        if !(matches!(stage, Stage::Padding | Stage::Cr | Stage::Dash)) {
            self.run = 0;
        }
        self.stage = stage;
    }

    fn count(&mut self, max: usize, what: &str) -> ApiResult<()> {
        self.run += 1;
        if self.run > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the form has more than {max} bytes {what}"),
            ));
        }
        Ok(())
    }
}

/// A pattern found in a stream across chunk boundaries (Knuth–Morris–Pratt:
/// the partial match survives the end of a chunk, and a false start such as
/// `\r\r\n--B` is not missed).
struct Finder {
    pattern: Vec<u8>,
    /// For each prefix length, the longest proper prefix that is also its
    /// suffix.
    fallback: Vec<usize>,
    /// How much of the pattern the bytes so far end with.
    at: usize,
}

impl Finder {
    fn new(pattern: Vec<u8>) -> Finder {
        let mut fallback = vec![0; pattern.len()];
        let mut k = 0;
        for i in 1..pattern.len() {
            while k > 0 && pattern[i] != pattern[k] {
                k = fallback[k - 1];
            }
            if pattern[i] == pattern[k] {
                k += 1;
            }
            fallback[i] = k;
        }
        Finder {
            pattern,
            fallback,
            at: 0,
        }
    }

    /// Takes one byte; true when it completes the pattern (then it starts
    /// over: what follows a delimiter is never part of the next one).
    fn step(&mut self, b: u8) -> bool {
        while self.at > 0 && self.pattern[self.at] != b {
            self.at = self.fallback[self.at - 1];
        }
        if self.pattern[self.at] == b {
            self.at += 1;
        }
        if self.at == self.pattern.len() {
            self.at = 0;
            return true;
        }
        false
    }
}

/// The request body on its way to the parser, checked by a `FormScan`. Its
/// refusal is left in `refused` for the handler and ends the stream with an
/// error, so the parser stops reading. It also hands over one chunk per
/// poll: the parser pulls chunks as long as they are ready, so from a body
/// that is always ready it would buffer everything before looking at any.
/// Dropped (the form read, or refused for any reason), it lingers on what
/// is left of the body.
pub(super) struct FormGuard {
    /// None once dropped.
    inner: Option<BodyDataStream>,
    scan: FormScan,
    refused: Arc<Mutex<Option<ApiError>>>,
    /// A chunk was just handed over: the next poll yields first.
    handed: bool,
}

impl FormGuard {
    pub(super) fn new(
        body: BodyDataStream,
        boundary: &str,
        refused: Arc<Mutex<Option<ApiError>>>,
    ) -> FormGuard {
        FormGuard {
            inner: Some(body),
            scan: FormScan::new(boundary),
            refused,
            handed: false,
        }
    }
}

impl Stream for FormGuard {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.handed {
            this.handed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.scan.feed(&chunk) {
                Ok(()) => {
                    this.handed = true;
                    Poll::Ready(Some(Ok(chunk)))
                }
                Err(refusal) => {
                    let message = refusal.message.clone();
                    *this.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal);
                    // Nothing more is read from the client.
                    this.scan.stage = Stage::Done;
                    Poll::Ready(Some(Err(axum::Error::new(message))))
                }
            },
            other => other,
        }
    }
}

impl Drop for FormGuard {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take() {
            linger(body);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn form_boundaries_are_read_as_rfc_2046_allows() {
        let ok = |ct: &str| form_boundary(ct).unwrap();
        assert_eq!(ok("multipart/form-data; boundary=----abc123"), "----abc123");
        assert_eq!(ok("multipart/form-data;boundary=\"a b:c\""), "a b:c");
        assert_eq!(ok("multipart/form-data; charset=utf-8; BOUNDARY=x"), "x");
        for bad in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"abc",
            "multipart/form-data; boundary=a\"b",
            "multipart/form-data; boundary=\"ends \"",
            &format!("multipart/form-data; boundary={}", "x".repeat(71)),
        ] {
            assert!(form_boundary(bad).is_err(), "{bad}");
        }
    }

    /// A form of `parts` (header block, data) with `boundary`.
    pub(in crate::api) fn form(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (head, data) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    /// Feeds `body` in chunks of `size`: the first refusal, if any.
    fn scan(boundary: &str, body: &[u8], size: usize) -> Result<usize, String> {
        let mut scan = FormScan::new(boundary);
        for chunk in body.chunks(size) {
            scan.feed(chunk).map_err(|e| e.message)?;
        }
        Ok(scan.parts)
    }

    #[test]
    fn a_form_scan_counts_parts_across_any_chunking() {
        let b = "------------------------d74496d66958873e";
        // Data that looks like delimiters but is not: CR CR LF, a partial
        // boundary, the boundary without CRLF before it.
        let tricky = format!("x\r\r\n--{}\r\n-{b}", &b[..20]);
        let body = form(
            b,
            &[
                ("Content-Disposition: form-data; name=\"name\"", b"svc"),
                (
                    "Content-Disposition: form-data; name=\"tag\"",
                    tricky.as_bytes(),
                ),
                (
                    "Content-Disposition: form-data; name=\"file\"; filename=\"a.elf\"\r\n\
                     Content-Type: application/octet-stream",
                    &[0x0d; 100_000],
                ),
            ],
        );
        for size in [1, 2, 3, 7, 64, 4096, body.len()] {
            assert_eq!(scan(b, &body, size), Ok(3), "chunks of {size}");
        }
    }

    #[test]
    fn a_form_scan_refuses_what_the_parser_would_buffer() {
        let b = "XyZ";
        let field = ("Content-Disposition: form-data; name=\"f\"", &b"v"[..]);
        let many = form(b, &[field; PARTS_MAX + 1]);
        let why = scan(b, &many, 1000).unwrap_err();
        assert!(why.contains("more than 16 parts"), "{why}");
        assert_eq!(scan(b, &form(b, &[field; PARTS_MAX]), 1000), Ok(PARTS_MAX));

        let long_head = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            "n".repeat(9000)
        );
        let why = scan(b, &form(b, &[(&long_head, b"v")]), 1000).unwrap_err();
        assert!(why.contains("in the headers of a part"), "{why}");
        // A header block that never ends is refused as soon as it is long.
        let mut endless = format!("--{b}\r\nContent-Disposition: ").into_bytes();
        endless.extend(std::iter::repeat_n(b'x', PART_HEAD_MAX + 10));
        assert!(scan(b, &endless, 100).is_err());

        let mut preamble = vec![b'p'; PREAMBLE_MAX + 1];
        preamble.extend(form(b, &[field]));
        let why = scan(b, &preamble, 1000).unwrap_err();
        assert!(why.contains("before the first boundary"), "{why}");
        let mut padded = format!("--{b}").into_bytes();
        padded.extend(std::iter::repeat_n(b' ', PREAMBLE_MAX + 1));
        assert!(scan(b, &padded, 1000).is_err());

        // Data is the reader's to bound, however long.
        let big = vec![b'\r'; 3 << 20];
        assert_eq!(scan(b, &form(b, &[("X: y", &big)]), 65536), Ok(1));
    }
}
