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

/// An answer's body as a blocking reader.
pub(super) struct BodyReader {
    runtime: tokio::runtime::Handle,
    stream: std::pin::Pin<Box<axum::body::BodyDataStream>>,
    held: Bytes,
}

impl BodyReader {
    pub(super) fn new(runtime: tokio::runtime::Handle, body: hyper::body::Incoming) -> BodyReader {
        let stream = axum::body::Body::new(body).into_data_stream();
        BodyReader {
            runtime,
            stream: Box::pin(stream),
            held: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.held.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.held = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.held.len());
        buf[..n].copy_from_slice(&self.held.split_to(n));
        Ok(n)
    }
}
