//! Blobs fetched from the host that has them (`catalog::remote_blobs`
//! says when): an image's or a stored boot file's raw bytes from that
//! host's API, over the same
//! pinned TLS and fleet secret as forwarded requests. The caller is a
//! job's blocking thread; the request runs on the server's runtime.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::Hosts;
use crate::catalog::remote_blobs::BlobSource;

pub struct PeerBlobs {
    pub hosts: Arc<Hosts>,
    pub runtime: tokio::runtime::Handle,
}

impl BlobSource for PeerBlobs {
    fn fetch(&self, host: &str, api_path: &str) -> Result<Box<dyn Read + Send>, String> {
        let peer = self
            .hosts
            .peer(host)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("host {host} is down or gone"))?;
        let req = hyper::Request::get(api_path)
            .header(hyper::header::ACCEPT, "application/octet-stream")
            .body(axum::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let (secret, me) = (self.hosts.secret(), self.hosts.name());
        let answer = self
            .runtime
            .block_on(peer.send(secret, me, req))
            .map_err(|e| e.to_string())?;
        if answer.status() != hyper::StatusCode::OK {
            return Err(format!("it answered {}", answer.status()));
        }
        Ok(Box::new(BodyReader::new(
            self.runtime.clone(),
            answer.into_body(),
        )))
    }
}

/// How long a body may send nothing before its read fails: a host that
/// hangs mid-answer must not hold a job (or the one OS image copy at a
/// time) for ever.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// An answer's body as a blocking reader.
pub(super) struct BodyReader {
    runtime: tokio::runtime::Handle,
    stream: std::pin::Pin<Box<axum::body::BodyDataStream>>,
    held: Bytes,
    stall: std::time::Duration,
}

impl BodyReader {
    pub(super) fn new(runtime: tokio::runtime::Handle, body: hyper::body::Incoming) -> BodyReader {
        BodyReader::of(runtime, axum::body::Body::new(body), STALL)
    }

    fn of(
        runtime: tokio::runtime::Handle,
        body: axum::body::Body,
        stall: std::time::Duration,
    ) -> BodyReader {
        BodyReader {
            runtime,
            stream: Box::pin(body.into_data_stream()),
            held: Bytes::new(),
            stall,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.held.is_empty() {
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(self.stall, self.stream.next()).await });
            match next {
                Ok(Some(Ok(chunk))) => self.held = chunk,
                Ok(Some(Err(e))) => return Err(std::io::Error::other(e.to_string())),
                Ok(None) => return Ok(0),
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the other host sent nothing for {:?}", self.stall),
                    ))
                }
            }
        }
        let n = buf.len().min(self.held.len());
        buf[..n].copy_from_slice(&self.held.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_stops_sending_fails_its_read_after_the_stall() {
        // Multi-threaded, as the server's: a handle's block_on drives no
        // timer of a current-thread runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let first =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let body = axum::body::Body::from_stream(first.chain(futures_util::stream::pending()));
        let mut reader = BodyReader::of(
            runtime.handle().clone(),
            body,
            std::time::Duration::from_millis(50),
        );
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        // A body that ends is read to its end.
        let whole = axum::body::Body::from("xyz");
        let mut reader = BodyReader::of(
            runtime.handle().clone(),
            whole,
            std::time::Duration::from_millis(50),
        );
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"xyz");
    }
}
