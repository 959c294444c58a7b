//! The clocks an API connection runs under, so that no client can hold a
//! connection (and its descriptor) by being idle or slow:
//!
//! - `GuardedIo` wraps the TCP stream. Between requests it allows `idle`
//!   (the first request: `head`) for the next request to begin, then
//!   `head` from that first byte to the end of the head; a write that makes
//!   no progress for `body_stall` (a client that stopped reading) fails.
//! - `GuardedBody` wraps each request body: a stall of `body_stall` without
//!   a byte fails it, and after `body_stall` it must average
//!   `min_body_rate`, so that a body shorter than its Content-Length or
//!   trickled a byte at a time ends in bounded time, uploads included.
//!
//! The service tells the connection where a request is (`Phase`): hyper's
//! own header timer starts when it waits for a head, idle time included,
//! so it cannot tell an idle keep-alive from a slow head.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::config::ConnLimits;

const WAITING: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// Where the connection's current request is, shared by its stream and
/// its service (which run in one task), and with the connection gate,
/// which may evict the connection while it serves no request.
#[derive(Default)]
pub struct Phase {
    state: AtomicU8,
    in_request: Arc<AtomicBool>,
    /// Whether a request has been served: the first wait is `head` long.
    served: AtomicBool,
    /// The stream's pending read, woken when a response ends so that it
    /// starts the idle clock even if hyper polled it before the end.
    reader: AtomicWaker,
}

impl Phase {
    /// A phase whose request flag is `in_request` (the gate's).
    pub fn new(in_request: Arc<AtomicBool>) -> Self {
        Phase {
            state: AtomicU8::new(WAITING),
            in_request,
            served: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        }
    }

    /// The TLS handshake runs: under its own clock, not the head's.
    pub fn handshake(&self) {
        self.state.store(BUSY, Ordering::Relaxed);
    }

    /// A request's head was read: its handler runs.
    pub fn busy(&self) {
        self.state.store(BUSY, Ordering::Relaxed);
        self.in_request.store(true, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
    }

    /// The response was sent: the next request may come.
    pub fn waiting(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
        self.in_request.store(false, Ordering::Relaxed);
        self.reader.wake();
    }

    fn get(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }
}

/// A deadline that is re-armed rather than re-made: its timer is
/// allocated the first time it is armed and then `reset`, so that a
/// keep-alive connection costs no allocation per request or response.
struct Clock {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            sleep: None,
            armed: false,
        }
    }

    /// Runs out `after` from now (tokio's clock, which tests may pause).
    fn arm(&mut self, after: Duration) {
        let deadline = tokio::time::Instant::now() + after;
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.armed = true;
    }

    /// No deadline. A timer still pending wakes the task once for
    /// nothing when it fires, which is cheaper than resetting it here.
    fn disarm(&mut self) {
        self.armed = false;
    }

    fn armed(&self) -> bool {
        self.armed
    }

    /// Whether the armed deadline passed; registers the waker otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.sleep {
            Some(sleep) if self.armed => sleep.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }
}

/// A stream whose reads between requests and whose stalled writes time out.
pub struct GuardedIo<S> {
    inner: S,
    phase: Arc<Phase>,
    limits: ConnLimits,
    /// The phase the read deadline was set for.
    seen: u8,
    read_deadline: Clock,
    write_deadline: Clock,
}

impl<S> GuardedIo<S> {
    pub fn new(inner: S, phase: Arc<Phase>, limits: ConnLimits) -> Self {
        GuardedIo {
            inner,
            phase,
            limits,
            seen: BUSY,
            read_deadline: Clock::new(),
            write_deadline: Clock::new(),
        }
    }

    /// Follows the phase the service set, and the first byte of a head.
    fn arm_read(&mut self, got_bytes: bool) {
        let phase = self.phase.get();
        if phase != self.seen {
            self.seen = phase;
            match phase {
                WAITING => {
                    let wait = if self.phase.served.load(Ordering::Relaxed) {
                        self.limits.idle
                    } else {
                        self.limits.head
                    };
                    self.read_deadline.arm(wait);
                }
                _ => self.read_deadline.disarm(),
            }
        }
        if got_bytes && self.seen == WAITING {
            self.seen = HEAD;
            self.phase.state.store(HEAD, Ordering::Relaxed);
            self.read_deadline.arm(self.limits.head);
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.arm_read(false);
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.arm_read(buf.filled().len() > before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.phase.reader.register(cx.waker());
                if this.read_deadline.expired(cx) {
                    let what = if this.seen == HEAD {
                        "no whole request head in time"
                    } else {
                        "idle too long"
                    };
                    return Poll::Ready(Err(timed_out(what)));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> GuardedIo<S> {
    /// Runs a write-side poll; a stall of `body_stall` fails it.
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.write_deadline.disarm();
                Poll::Ready(r)
            }
            Poll::Pending => {
                // The stall counts from the first write that made no
                // progress, not from each retry.
                if !self.write_deadline.armed() {
                    self.write_deadline.arm(self.limits.body_stall);
                }
                if self.write_deadline.expired(cx) {
                    self.write_deadline.disarm();
                    return Poll::Ready(Err(timed_out("the client stopped reading")));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard_write(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guard_write(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard_write(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard_write(cx, |s, cx| s.poll_shutdown(cx))
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body stalled for {0}s")]
    Stalled(u64),
    #[error("the request body came slower than {0} bytes/s")]
    TooSlow(u64),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// A request body with a stall timeout and a minimum average rate.
pub struct GuardedBody {
    inner: hyper::body::Incoming,
    stall: Duration,
    min_rate: u64,
    /// The clocks start at the handler's first read, not at the head: a
    /// handler may wait (for auth, for a slot) before it reads.
    started: Option<Instant>,
    bytes: u64,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl GuardedBody {
    pub fn new(inner: hyper::body::Incoming, limits: &ConnLimits) -> Self {
        GuardedBody {
            inner,
            stall: limits.body_stall,
            min_rate: limits.min_body_rate,
            started: None,
            bytes: 0,
            deadline: None,
        }
    }

    /// Whether the body ran long enough to be judged and is below the rate.
    fn too_slow(&self, started: Instant, now: Instant) -> bool {
        let elapsed = now.duration_since(started);
        elapsed >= self.stall && (self.bytes as f64) < self.min_rate as f64 * elapsed.as_secs_f64()
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let stall = this.stall;
        let started = *this.started.get_or_insert_with(Instant::now);
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                let now = Instant::now();
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(now + stall));
                if this.too_slow(started, now) && !this.inner.is_end_stream() {
                    return Poll::Ready(Some(Err(BodyError::TooSlow(this.min_rate))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyError::Stalled(stall.as_secs()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the connection when it is done (sent or
/// dropped), so that the idle clock starts.
pub struct PhaseBody {
    inner: axum::body::Body,
    phase: Arc<Phase>,
}

impl PhaseBody {
    pub fn new(inner: axum::body::Body, phase: Arc<Phase>) -> Self {
        PhaseBody { inner, phase }
    }
}

impl Drop for PhaseBody {
    fn drop(&mut self) {
        self.phase.waiting();
    }
}

impl Body for PhaseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(ms: u64) -> ConnLimits {
        ConnLimits {
            head: Duration::from_millis(ms),
            idle: Duration::from_millis(3 * ms),
            body_stall: Duration::from_millis(ms),
            ..ConnLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_request_that_never_starts_times_out_after_head() {
        let (client, server) = tokio::io::duplex(64);
        let phase = Arc::new(Phase::default());
        let mut io = GuardedIo::new(server, phase, limits(100));
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_trickled_byte_by_byte_ends_at_head_from_its_first_byte() {
        let (mut client, server) = tokio::io::duplex(64);
        let phase = Arc::new(Phase::default());
        let mut io = GuardedIo::new(server, phase.clone(), limits(100));
        let started = tokio::time::Instant::now();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            loop {
                if let Err(e) = io.read(&mut buf).await {
                    return (e, started.elapsed());
                }
            }
        });
        // A byte every 60 ms: each is within any per-read limit, but the
        // head as a whole is not.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            if client.write_all(b"G").await.is_err() {
                break;
            }
        }
        let (err, at) = reader.await.unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(at, Duration::from_millis(160));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_request_has_no_read_clock_and_idle_starts_after_it() {
        let (client, server) = tokio::io::duplex(64);
        let phase = Arc::new(Phase::default());
        let mut io = GuardedIo::new(server, phase.clone(), limits(100));
        phase.busy();
        let mut buf = [0u8; 8];
        let long = tokio::time::timeout(Duration::from_secs(60), io.read(&mut buf)).await;
        assert!(
            long.is_err(),
            "a busy connection must not time out its reads"
        );
        phase.waiting();
        let started = tokio::time::Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // After a request, the idle limit applies (3 x 100 ms here).
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_clock_counts_each_wait_from_its_own_start() {
        let (mut client, server) = tokio::io::duplex(64);
        let phase = Arc::new(Phase::default());
        let mut io = GuardedIo::new(server, phase.clone(), limits(100));
        phase.waiting();
        let mut buf = [0u8; 8];
        // Two requests on one connection: the clock armed for the first
        // wait (head), then for the head, is reset for the idle wait.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(b"GET").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 3);
            phase.busy();
            tokio::time::sleep(Duration::from_millis(500)).await;
            phase.waiting();
        }
        let started = tokio::time::Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_to_a_client_that_stopped_reading_times_out() {
        let (_client, server) = tokio::io::duplex(16);
        let phase = Arc::new(Phase::default());
        let mut io = GuardedIo::new(server, phase, limits(100));
        let err = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
