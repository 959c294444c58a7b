//! A response body that blocking code writes (a dataset's stream, say):
//! sent as it is written, through a small channel, so that a download of
//! any size holds a few chunks in memory and no file on disk. A writer
//! whose reader went away fails its next write and stops; a writer that
//! fails ends the body with an error, which the client sees as a body cut
//! short, never as a whole one.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

const CHUNK: usize = 256 * 1024;

/// The body `write` produces, run on a blocking thread.
pub fn written_body<E: std::fmt::Display>(
    write: impl FnOnce(&mut dyn Write) -> Result<(), E> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            held: Vec::with_capacity(CHUNK),
        };
        let written = write(&mut out)
            .map_err(|e| e.to_string())
            .and_then(|()| out.flush().map_err(|e| e.to_string()));
        if let Err(why) = written {
            tracing::warn!("a streamed answer broke off: {why}");
            let _ = tx.blocking_send(Err(io::Error::other(why)));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    held: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() >= CHUNK {
            self.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.held, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
