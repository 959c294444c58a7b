//! Request bodies into blobs, and blobs out as responses: constant memory
//! both ways. An upload is written by a blocking thread fed through a small
//! channel; a body cut off half way, or one over the limit, drops the
//! staged blob so nothing becomes visible. A multipart form is bounded as
//! it streams: its parts and their headers (form.rs) and its text fields
//! (`FIELD_MAX`). A body refused half way is still read, and dropped, for
//! a moment (`linger`), so that the refusal reaches the client. Downloads
//! honour ETag and a single byte Range, and name the file in a
//! `Content-Disposition` any client reads safely.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::form::{form_boundary, FormGuard};
use super::{ApiError, ApiResult};
use crate::store::blobs::{Blobs, StagedBlob};

/// Chunks in flight between the connection and the writer thread.
const QUEUE: usize = 16;

/// The longest text field of a form (name, tag...): they are names, and
/// are read into memory, so nothing longer is ever needed or buffered.
pub const FIELD_MAX: usize = 4096;

/// After a body is refused half way, what is still read (and dropped) so
/// that the refusal reaches the client: what a client may have in flight
/// (socket buffers, a round trip) before it sees the answer and stops.
const LINGER_MAX: u64 = 32 << 20;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// An upload: the staged blob and the form fields that came with it.
pub struct Upload {
    pub blob: StagedBlob,
    /// Text fields of a multipart form (name, tag...), in order.
    pub fields: Vec<(String, String)>,
}

impl Upload {
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A writer thread's end of the channel.
struct Writer {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<Result<StagedBlob, crate::store::blobs::BlobError>>,
    written: u64,
    limit: u64,
}

impl Writer {
    fn start(blobs: &Blobs, limit: u64) -> ApiResult<Writer> {
        let mut staged = blobs.stage()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                staged.write_chunk(&chunk)?;
            }
            Ok(staged)
        });
        Ok(Writer {
            tx,
            done,
            written: 0,
            limit,
        })
    }

    async fn push(&mut self, chunk: Bytes) -> ApiResult<()> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(ApiError::too_large(self.limit));
        }
        if self.tx.send(chunk).await.is_err() {
            // The writer stopped: its error says why.
            return Err(ApiError::internal("the blob writer stopped early"));
        }
        Ok(())
    }

    async fn finish(self) -> ApiResult<StagedBlob> {
        drop(self.tx);
        Ok(self.done.await??)
    }

    async fn pump<S, E>(&mut self, mut stream: S) -> ApiResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("the upload was cut off or unreadable: {e}"))
            })?;
            self.push(chunk).await?;
        }
        Ok(())
    }
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Receives a file upload: the raw body (`application/octet-stream`), or
/// the file part of `multipart/form-data` (the part with a file name, or
/// one named `file`) with the other parts as fields.
pub async fn receive(blobs: &Blobs, limit: u64, req: Request) -> ApiResult<Upload> {
    let kind = media_type(req.headers());
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(ApiError::too_large(limit));
        }
    }
    match kind.as_str() {
        "application/octet-stream" => {
            let mut writer = Writer::start(blobs, limit)?;
            let mut body = req.into_body().into_data_stream();
            if let Err(refused) = writer.pump(&mut body).await {
                linger(body);
                return Err(refused);
            }
            Ok(Upload {
                blob: writer.finish().await?,
                fields: Vec::new(),
            })
        }
        "multipart/form-data" => receive_form(blobs, limit, req).await,
        _ => Err(ApiError::unsupported_media(
            "expected Content-Type: application/octet-stream or multipart/form-data",
        )),
    }
}

/// The file part and the text fields of a `multipart/form-data` body.
/// axum's parser (multer) has no bound on the header block of a part, the
/// bytes before the first boundary, or the number of parts, and a field's
/// `text()` reads it whole: so the body reaches the parser through
/// `FormGuard`, which refuses what `FormScan` finds over those bounds, and
/// text fields are read chunk by chunk up to `FIELD_MAX`. Memory stays a
/// few chunks whatever the client sends.
async fn receive_form(blobs: &Blobs, limit: u64, req: Request) -> ApiResult<Upload> {
    let (mut parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = form_boundary(content_type)?;
    // The parser reads the boundary from this header again: written back
    // in one canonical form, it cannot read another than the guard does.
    let canonical = HeaderValue::from_str(&format!("multipart/form-data; boundary=\"{boundary}\""))
        .map_err(|_| ApiError::bad_request("the multipart boundary is not a valid header value"))?;
    parts.headers.insert(header::CONTENT_TYPE, canonical);
    let refused = Arc::new(Mutex::new(None));
    let guard = FormGuard::new(body.into_data_stream(), &boundary, refused.clone());
    let req = Request::from_parts(parts, Body::from_stream(guard));
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    // A refusal of the guard reaches the parser as a read error; the
    // client gets the refusal, not the parser's word for it.
    let bad = |e: axum::extract::multipart::MultipartError| {
        let refusal = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
        refusal.unwrap_or_else(|| {
            ApiError::bad_request(format!("bad multipart body: {}", e.body_text()))
        })
    };
    let mut fields = Vec::new();
    let mut blob = None;
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if field.file_name().is_some() || name == "file" {
            if blob.is_some() {
                return Err(ApiError::bad_request("more than one file in the form"));
            }
            let mut writer = Writer::start(blobs, limit)?;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                writer.push(chunk).await?;
            }
            blob = Some(writer.finish().await?);
        } else {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if text.len() + chunk.len() > FIELD_MAX {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!(
                            "form field {:?} is longer than {FIELD_MAX} bytes",
                            printable(&name)
                        ),
                    ));
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text).map_err(|_| {
                ApiError::bad_request(format!(
                    "form field {:?} is not UTF-8 text",
                    printable(&name)
                ))
            })?;
            fields.push((name, text));
        }
    }
    let blob = blob.ok_or_else(|| ApiError::bad_request("the form has no file part"))?;
    Ok(Upload { blob, fields })
}

/// A client's field name as an error message quotes it: its first 64
/// characters (a name may be as long as a part's whole header block).
fn printable(name: &str) -> String {
    let mut short: String = name.chars().take(64).collect();
    if short.len() < name.len() {
        short.push('…');
    }
    short
}

/// A refusal before the body is read: what the client is still sending is
/// read and dropped for a moment, so that the answer reaches it (a reset
/// would overtake it). `req` comes back when there is no refusal.
pub(super) fn refuse_early<T>(checked: ApiResult<T>, req: Request) -> ApiResult<(T, Request)> {
    match checked {
        Ok(t) => Ok((t, req)),
        Err(e) => {
            linger(req.into_body().into_data_stream());
            Err(e)
        }
    }
}

/// Reads what is left of a request body and drops it, up to `LINGER_MAX`
/// bytes or for `LINGER_TIME`, off the handler. A connection closed with
/// data unread is reset by the kernel, and the reset can overtake an
/// answer (413...) the client has not read yet: it would see a broken
/// pipe, not why. A client stops sending once it reads the answer; one
/// that does not is cut off at the bound. A body already read ends at once.
pub(super) fn linger<S>(mut body: S)
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut left = LINGER_MAX;
        let drain = async {
            while let Some(Ok(chunk)) = body.next().await {
                left = left.saturating_sub(chunk.len() as u64);
                if left == 0 {
                    break;
                }
            }
        };
        // Either end is fine: the body is dropped with this task.
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

/// `Content-Disposition: attachment` naming `name` (RFC 6266): `filename=`
/// holds an ASCII stand-in with anything that could end or split the
/// parameter (quotes, `;`, `\\`, `/`, controls, non-ASCII) replaced by
/// `_`, for old clients; `filename*=UTF-8''` holds the name itself,
/// percent-encoded (RFC 8187), for every client since.
pub fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '+' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        // RFC 8187 attr-char: what may stand unencoded.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let value = format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}");
    // Only visible ASCII and spaces were written, which a header value
    // always accepts; the fallback keeps the type total all the same.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A byte range asked for by `Range: bytes=...` (one range only).
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let spec = value.to_str().map_err(|_| ())?;
    let spec = spec.strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        // Several ranges would need multipart/byteranges; the whole file is
        // a correct answer to that.
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| ())?, e.parse().map_err(|_| ())?);
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Answers with the blob `sha256`: 304 for a matching `If-None-Match`, 206
/// for a satisfiable Range, 416 for one that is not.
pub async fn download(
    blobs: &Blobs,
    sha256: &str,
    headers: &HeaderMap,
    content_type: &'static str,
    file_name: Option<String>,
) -> ApiResult<Response> {
    let etag = format!("\"{sha256}\"");
    if crate::net::conditional::if_none_match(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let (file, size) = blobs.open_blob(sha256)?;
    send_file(file, size, sha256, headers, content_type, file_name).await
}

/// Answers with an open file whose sha256 is `sha256` (the ETag): 304 for
/// a matching `If-None-Match`, 206 for a satisfiable Range, 416 for one
/// that is not. Blobs and made files (hypervisor disks) alike.
pub async fn send_file(
    file: std::fs::File,
    size: u64,
    sha256: &str,
    headers: &HeaderMap,
    content_type: &'static str,
    file_name: Option<String>,
) -> ApiResult<Response> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let etag = format!("\"{sha256}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mut file = tokio::fs::File::from_std(file);
    let whole_if_changed = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != etag);
    let wanted = if whole_if_changed {
        Ok(None)
    } else {
        range(headers, size)
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(name) = file_name {
        builder = builder.header(header::CONTENT_DISPOSITION, content_disposition(&name));
    }
    let response = match wanted {
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response())
        }
        Ok(None) => builder
            .header(header::CONTENT_LENGTH, size)
            .body(Body::from_stream(
                tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024),
            )),
        Ok(Some((start, end))) => {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(ApiError::internal)?;
            let len = end - start + 1;
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_LENGTH, len)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
                .body(Body::from_stream(
                    tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024),
                ))
        }
    };
    response.map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::form::tests::form;

    fn h(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        h
    }

    #[test]
    fn content_disposition_is_safe_ascii_and_exact_utf8() {
        assert_eq!(
            content_disposition("svc-v1.2"),
            "attachment; filename=\"svc-v1.2\"; filename*=UTF-8''svc-v1.2"
        );
        assert_eq!(
            content_disposition("a\"b;c/d é\r\nX: y"),
            "attachment; filename=\"a_b_c_d____X__y\"; \
             filename*=UTF-8''a%22b%3Bc%2Fd%20%C3%A9%0D%0AX%3A%20y"
        );
        // Whatever the name, the value is one header with one quoted pair.
        let v = content_disposition("\\\"\"; filename=evil.exe");
        let v = v.to_str().unwrap();
        assert_eq!(v.matches('"').count(), 2, "{v}");
        assert!(
            v.contains("filename*=UTF-8''%5C%22%22%3B%20filename%3Devil.exe"),
            "{v}"
        );
    }

    /// A body of `start` and then `total` bytes of `a` made on demand,
    /// counting what was taken from it; always ready, as a fast client's.
    fn endless_field(
        start: &str,
        total: usize,
        taken: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Body {
        let first = Bytes::from(start.to_string());
        let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
        let stream = futures_util::stream::iter(
            std::iter::once(first).chain(std::iter::repeat_n(chunk, total / (64 * 1024))),
        )
        .map(move |c| {
            taken.fetch_add(c.len(), std::sync::atomic::Ordering::Relaxed);
            Ok::<_, std::io::Error>(c)
        });
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_huge_text_field_is_refused_after_a_few_chunks() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let request = |start: &str, taken: &Arc<AtomicUsize>| {
            Request::builder()
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=B0UND")
                .body(endless_field(start, 1 << 30, taken.clone()))
                .unwrap()
        };
        let taken = Arc::new(AtomicUsize::new(0));
        let start = "--B0UND\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n";
        let err = receive(&blobs, u64::MAX, request(start, &taken))
            .await
            .err()
            .unwrap();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", err.message);
        assert!(
            err.message.contains("\"name\" is longer than 4096"),
            "{}",
            err.message
        );
        assert!(taken.load(Ordering::Relaxed) < 1 << 20, "read {taken:?}");

        // A header block that never ends: the guard's refusal, not the parser's.
        let taken = Arc::new(AtomicUsize::new(0));
        let err = receive(&blobs, u64::MAX, request("--B0UND\r\nX-Pad: ", &taken))
            .await
            .err()
            .unwrap();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.message.contains("headers of a part"), "{}", err.message);
        assert!(taken.load(Ordering::Relaxed) < 1 << 20, "read {taken:?}");
    }

    #[tokio::test]
    async fn a_form_with_a_file_and_fields_is_received() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let body = form(
            "b=\"q\"",
            &[
                ("Content-Disposition: form-data; name=\"name\"", b"svc"),
                (
                    "Content-Disposition: form-data; name=\"image\"; filename=\"x\"",
                    b"\x7fELF\r\n--b=",
                ),
                ("Content-Disposition: form-data; name=\"tag\"", b"v1"),
            ],
        );
        let req = Request::builder()
            .header(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=\"b=\\\"q\\\"\"",
            )
            .body(Body::from(body.clone()))
            .unwrap();
        // A quote is no bchar: refused before anything is read.
        assert_eq!(
            receive(&blobs, 1 << 20, req).await.err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
        let body = String::from_utf8(body).unwrap().replace("b=\"q\"", "b=:q");
        let req = Request::builder()
            .header(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=\"b=:q\"",
            )
            .body(Body::from(body))
            .unwrap();
        let upload = receive(&blobs, 1 << 20, req).await.unwrap();
        assert_eq!(upload.field("name").as_deref(), Some("svc"));
        assert_eq!(upload.field("tag").as_deref(), Some("v1"));
        assert_eq!(upload.blob.head(), b"\x7fELF\r\n--b=");
    }

    #[test]
    fn ranges_are_parsed_and_clamped() {
        assert_eq!(range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range(&h("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(range(&h("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(range(&h("bytes=-4"), 10), Ok(Some((6, 9))));
        assert_eq!(range(&h("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(range(&h("bytes=10-"), 10), Err(()));
        assert_eq!(range(&h("bytes=4-2"), 10), Err(()));
        assert_eq!(range(&h("items=0-1"), 10), Err(()));
        assert_eq!(range(&h("bytes=0-1,4-5"), 10), Ok(None));
    }
}
