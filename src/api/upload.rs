//! Request bodies into blobs, and blobs out as responses: constant memory
//! both ways. An upload is written by a blocking thread fed through a small
//! channel; a body cut off half way, or one over the limit, drops the
//! staged blob so nothing becomes visible. Downloads honour ETag and a
//! single byte Range.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::{ApiError, ApiResult};
use crate::store::blobs::{Blobs, StagedBlob};

/// Chunks in flight between the connection and the writer thread.
const QUEUE: usize = 16;

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
            writer.pump(req.into_body().into_data_stream()).await?;
            Ok(Upload {
                blob: writer.finish().await?,
                fields: Vec::new(),
            })
        }
        "multipart/form-data" => {
            let mut form = Multipart::from_request(req, &())
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
            let mut fields = Vec::new();
            let mut blob = None;
            let bad = |e: axum::extract::multipart::MultipartError| {
                ApiError::bad_request(format!("bad multipart body: {}", e.body_text()))
            };
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
                    let text = field.text().await.map_err(bad)?;
                    if text.len() > 4096 {
                        return Err(ApiError::bad_request(format!(
                            "form field {name:?} is too long"
                        )));
                    }
                    fields.push((name, text));
                }
            }
            let blob = blob.ok_or_else(|| ApiError::bad_request("the form has no file part"))?;
            Ok(Upload { blob, fields })
        }
        _ => Err(ApiError::unsupported_media(
            "expected Content-Type: application/octet-stream or multipart/form-data",
        )),
    }
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
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let etag = format!("\"{sha256}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let (file, size) = blobs.open_blob(sha256)?;
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
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            builder = builder.header(header::CONTENT_DISPOSITION, v);
        }
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

    fn h(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        h
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
