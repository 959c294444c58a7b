//! A file's answer: the validators (ETag, Last-Modified and the requests'
//! If-None-Match, If-Modified-Since, If-Range), byte ranges (one: 206 with
//! Content-Range; several: multipart/byteranges; none satisfiable: 416),
//! and the body, read on blocking threads in 512 KiB chunks (each answer
//! opens its own file, so its offset is the answer's alone).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::resolve::FileTarget;
use crate::net::conditional::if_none_match;

/// Bytes read per chunk: large enough that the blocking-thread hop is
/// paid rarely, small enough that 100 clients hold little memory.
const CHUNK: u64 = 512 * 1024;

/// More ranges than this in one request are ignored (the whole file is
/// sent), as nginx's max_ranges does: many tiny ranges cost far more
/// than they are worth.
const MAX_RANGES: usize = 64;

/// By extension; booting machines look at few of these, browsers at all.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "cfg" | "conf" | "ipxe" | "md" | "sha256" | "sha256sum" | "md5sum") => {
            "text/plain; charset=utf-8"
        }
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("iso") => "application/x-iso9660-image",
        Some("img" | "raw" | "bin" | "efi" | "elf" | "squashfs") => "application/octet-stream",
        Some("qcow2") => "application/x-qemu-disk",
        Some("gz" | "tgz") => "application/gzip",
        Some("xz" | "txz") => "application/x-xz",
        Some("zst") => "application/zstd",
        Some("tar") => "application/x-tar",
        Some("rpm") => "application/x-rpm",
        Some("deb" | "udeb") => "application/vnd.debian.binary-package",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A range of bytes, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// What the Range header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// No Range, a malformed one, or too many: the whole file.
    Whole,
    Some(Vec<ByteRange>),
    /// Well-formed, but no range overlaps the file: 416.
    Unsatisfiable,
}

/// RFC 9110 14.1: `bytes=a-b, a-, -n`; a malformed header is ignored.
pub fn ranges(value: Option<&str>, size: u64) -> Ranges {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ranges::Whole;
    };
    let mut out = Vec::new();
    let mut count = 0;
    for part in spec.split(',').map(str::trim) {
        count += 1;
        if count > MAX_RANGES {
            return Ranges::Whole;
        }
        let Some((a, b)) = part.split_once('-') else {
            return Ranges::Whole;
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let range = match (a.trim(), b.trim()) {
            ("", n) => {
                let Some(n) = number(n) else {
                    return Ranges::Whole;
                };
                (n > 0 && size > 0).then(|| ByteRange {
                    start: size.saturating_sub(n),
                    end: size - 1,
                })
            }
            (s, "") => {
                let Some(s) = number(s) else {
                    return Ranges::Whole;
                };
                (s < size).then(|| ByteRange {
                    start: s,
                    end: size - 1,
                })
            }
            (s, e) => {
                let (Some(s), Some(e)) = (number(s), number(e)) else {
                    return Ranges::Whole;
                };
                if e < s {
                    return Ranges::Whole;
                }
                (s < size).then(|| ByteRange {
                    start: s,
                    end: e.min(size - 1),
                })
            }
        };
        out.extend(range);
    }
    // Overlapping ranges could ask for many times the file in one small
    // request; like nginx, more bytes than the file holds get the file.
    let total: u64 = out.iter().map(ByteRange::len).sum();
    if out.is_empty() {
        Ranges::Unsatisfiable
    } else if total > size {
        Ranges::Whole
    } else {
        Ranges::Some(out)
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether If-Range lets the Range apply: no If-Range, or its ETag
/// (strong comparison) or date (exact, RFC 9110 13.1.5) matches.
fn if_range_holds(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(v) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return headers.get(header::IF_RANGE).is_none();
    };
    let v = v.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        return v == etag;
    }
    httpdate::parse_http_date(v).is_ok_and(|d| seconds(d) == seconds(modified))
}

/// If-Modified-Since, read only without If-None-Match (RFC 9110 13.1.3).
fn not_modified_since(headers: &HeaderMap, modified: SystemTime) -> bool {
    if headers.contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
        .is_some_and(|since| seconds(modified) <= seconds(since))
}

/// One piece of a body: bytes we made, or a range of the file.
enum Piece {
    Bytes(Bytes),
    File { at: u64, len: u64 },
}

/// The body: the pieces in order, the file's ranges read as they are
/// sent, or sliced from a mapping of a written-once file (no copy into
/// this process and no blocking-thread hop: a third of the CPU each byte
/// costs with 100 clients).
fn body(file: File, size: u64, pieces: Vec<Piece>, written_once: bool) -> Body {
    if written_once {
        if let Some(map) = mapped(&file, size) {
            return mapped_body(map, pieces);
        }
    }
    let file = Arc::new(file);
    let state = (file, VecDeque::from(pieces));
    let stream = futures_util::stream::unfold(state, |(file, mut pieces)| async move {
        let piece = pieces.pop_front()?;
        let chunk = match piece {
            Piece::Bytes(b) => Ok(b),
            Piece::File { at, len } => {
                let n = len.min(CHUNK);
                if len > n {
                    pieces.push_front(Piece::File {
                        at: at + n,
                        len: len - n,
                    });
                }
                read_at(file.clone(), at, n).await
            }
        };
        let failed = chunk.is_err();
        // After an error the stream ends: hyper closes the connection,
        // so the client sees a short body, not a wrong one.
        if failed {
            pieces.clear();
        }
        Some((chunk, (file, pieces)))
    });
    Body::from_stream(stream)
}

/// The whole file mapped read-only, or None when it cannot be (empty, not
/// the size its ranges were cut from, or the system refuses: the caller
/// reads instead).
fn mapped(file: &File, size: u64) -> Option<Bytes> {
    // SAFETY: the file is a store's blob, written once and never changed
    // in place (FileTarget::written_once); the mapping is read-only and
    // lives as long as the Bytes that hold it.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    if map.is_empty() || map.len() as u64 != size {
        return None;
    }
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(Bytes::from_owner(map))
}

fn mapped_body(map: Bytes, pieces: Vec<Piece>) -> Body {
    let chunks = pieces.into_iter().flat_map(move |piece| {
        let parts: Vec<Bytes> = match piece {
            Piece::Bytes(b) => vec![b],
            Piece::File { at, len } => {
                let (at, end) = (at as usize, (at + len) as usize);
                (at..end)
                    .step_by(CHUNK as usize)
                    .map(|from| map.slice(from..(from + CHUNK as usize).min(end)))
                    .collect()
            }
        };
        parts.into_iter().map(Ok::<_, std::io::Error>)
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn read_at(file: Arc<File>, at: u64, n: u64) -> std::io::Result<Bytes> {
    let read = tokio::task::spawn_blocking(move || {
        // Read into the buffer's spare capacity: a zeroed buffer would
        // cost a third of what each byte costs to serve.
        let mut buf = Vec::with_capacity(n as usize);
        let mut reader = &*file;
        reader.seek(SeekFrom::Start(at))?;
        reader.take(n).read_to_end(&mut buf)?;
        if (buf.len() as u64) < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Bytes::from(buf))
    })
    .await;
    match read {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

fn set(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The answer to a GET (or HEAD: the same head, no body) of `target`.
pub fn file(target: FileTarget, headers: &HeaderMap, head: bool) -> Response {
    let FileTarget {
        file,
        size,
        modified,
        etag,
        name,
        written_once,
    } = target;
    let last_modified = httpdate::fmt_http_date(modified);
    let mut r = Response::new(Body::empty());
    {
        let h = r.headers_mut();
        set(h, header::ETAG, &etag);
        set(h, header::LAST_MODIFIED, &last_modified);
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if if_none_match(headers, &etag) || not_modified_since(headers, modified) {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    let wanted = if if_range_holds(headers, &etag, modified) {
        ranges(
            headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
            size,
        )
    } else {
        Ranges::Whole
    };
    let ct = content_type(&name);
    let (status, length, pieces) = match wanted {
        Ranges::Unsatisfiable => {
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return r;
        }
        Ranges::Whole => {
            set(r.headers_mut(), header::CONTENT_TYPE, ct);
            (StatusCode::OK, size, vec![Piece::File { at: 0, len: size }])
        }
        Ranges::Some(list) if list.len() == 1 => {
            let one = list[0];
            let h = r.headers_mut();
            set(h, header::CONTENT_TYPE, ct);
            set(
                h,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{size}", one.start, one.end),
            );
            let piece = Piece::File {
                at: one.start,
                len: one.len(),
            };
            (StatusCode::PARTIAL_CONTENT, one.len(), vec![piece])
        }
        Ranges::Some(list) => {
            let boundary = boundary();
            set(
                r.headers_mut(),
                header::CONTENT_TYPE,
                &format!("multipart/byteranges; boundary={boundary}"),
            );
            let mut pieces = Vec::with_capacity(list.len() * 2 + 1);
            let mut length = 0;
            for (i, range) in list.iter().enumerate() {
                // The first part's CRLF is optional (RFC 2046's preamble);
                // every later one ends the previous part's bytes.
                let lead = if i == 0 { "" } else { "\r\n" };
                let part = format!(
                    "{lead}--{boundary}\r\nContent-Type: {ct}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                    range.start, range.end
                );
                length += part.len() as u64 + range.len();
                pieces.push(Piece::Bytes(Bytes::from(part)));
                pieces.push(Piece::File {
                    at: range.start,
                    len: range.len(),
                });
            }
            let end = format!("\r\n--{boundary}--\r\n");
            length += end.len() as u64;
            pieces.push(Piece::Bytes(Bytes::from(end)));
            (StatusCode::PARTIAL_CONTENT, length, pieces)
        }
    };
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if !head && length > 0 {
        *r.body_mut() = body(file, size, pieces, written_once);
    }
    r
}

/// A multipart boundary no file byte sequence is likely to contain.
fn boundary() -> String {
    let mut random = [0u8; 12];
    if getrandom::fill(&mut random).is_err() {
        // Uniqueness only matters against the bytes sent; the clock's
        // nanoseconds do as a fallback.
        let n = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        return format!("jetpack{n:x}");
    }
    format!("jetpack{}", hex::encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(ranges(None, 10), Ranges::Whole);
        assert_eq!(ranges(Some("bytes=0-3"), 10), Ranges::Some(vec![r(0, 3)]));
        assert_eq!(ranges(Some("bytes=5-"), 10), Ranges::Some(vec![r(5, 9)]));
        assert_eq!(ranges(Some("bytes=-3"), 10), Ranges::Some(vec![r(7, 9)]));
        assert_eq!(ranges(Some("bytes=-30"), 10), Ranges::Some(vec![r(0, 9)]));
        assert_eq!(ranges(Some("bytes=8-100"), 10), Ranges::Some(vec![r(8, 9)]));
        assert_eq!(
            ranges(Some("bytes=0-0, 2-3 ,-1"), 10),
            Ranges::Some(vec![r(0, 0), r(2, 3), r(9, 9)])
        );
        // Unsatisfiable parts are dropped; none left is 416.
        assert_eq!(
            ranges(Some("bytes=0-1,20-30"), 10),
            Ranges::Some(vec![r(0, 1)])
        );
        assert_eq!(ranges(Some("bytes=10-"), 10), Ranges::Unsatisfiable);
        assert_eq!(ranges(Some("bytes=-0"), 10), Ranges::Unsatisfiable);
        assert_eq!(ranges(Some("bytes=0-"), 0), Ranges::Unsatisfiable);
        // Malformed: ignored.
        for bad in [
            "items=0-1",
            "bytes=a-b",
            "bytes=3-1",
            "bytes=1",
            "bytes=+1-2",
            "bytes=-",
        ] {
            assert_eq!(ranges(Some(bad), 10), Ranges::Whole, "{bad}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(ranges(Some(&many), 10), Ranges::Whole);
        // More bytes than the file (overlaps): the file once.
        assert_eq!(ranges(Some("bytes=0-,0-"), 10), Ranges::Whole);
        assert_eq!(
            ranges(Some("bytes=0-3,2-5"), 10),
            Ranges::Some(vec![r(0, 3), r(2, 5)])
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.ISO"), "application/x-iso9660-image");
        assert_eq!(content_type("vmlinuz"), "application/octet-stream");
        assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
    }
}
