//! The API's listener: accept through the connection gate (`net`), the TLS
//! handshake under its own timeout, then HTTP/1.1 (hyper) over a guarded
//! stream with guarded bodies (guard.rs). On stop, idle connections close
//! at once, and requests in flight get `drain` to finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::guard::{GuardedBody, GuardedIo, Phase, PhaseBody};
use crate::config::ConnLimits;
use crate::net::{Admitted, ConnGate, GatedListener};

/// Largest request head hyper buffers (it answers 431 beyond).
const MAX_HEAD: usize = 64 * 1024;

/// The API's TLS configuration; SIGHUP swaps in a new one, which the
/// next handshakes use.
#[derive(Clone)]
pub struct ReloadableTls(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl ReloadableTls {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        ReloadableTls(Arc::new(RwLock::new(config)))
    }

    pub fn reload(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The local address of a request's connection (a request extension):
/// the address the client reached, for answers that name this server.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Serves `app` on `listener` until `stop`, then drains for up to `drain`.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    tls: Option<ReloadableTls>,
    limits: ConnLimits,
    gate: Arc<ConnGate>,
    stop: CancellationToken,
    drain: Duration,
) {
    let connections = TaskTracker::new();
    let listener = GatedListener::new(listener, gate);
    loop {
        let Admitted { tcp, peer, permit } = tokio::select! {
            _ = stop.cancelled() => break,
            admitted = listener.accept() => admitted,
        };
        let app = app.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let phase = Arc::new(Phase::new(permit.busy_flag()));
            let evicted = permit.evicted();
            tokio::select! {
                _ = connection(app, tcp, peer, tls, phase, limits, stop) => {}
                _ = evicted.cancelled() => {
                    tracing::debug!("API: closed idle connection from {peer} for a new one");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "stopping: {} API connection(s) still busy after {}s, closing them",
            connections.len(),
            drain.as_secs()
        );
    }
}

async fn connection(
    app: Router,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<ReloadableTls>,
    phase: Arc<Phase>,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    let local = tcp.local_addr().ok();
    let io = GuardedIo::new(tcp, phase.clone(), limits.clone());
    match tls {
        None => {
            phase.waiting();
            http(app, io, (peer, local), phase, limits, stop).await
        }
        Some(tls) => {
            // The handshake has its own clock; the head's starts after it.
            phase.handshake();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let handshake = tokio::time::timeout(limits.handshake, acceptor.accept(io));
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!("API: TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("API: TLS handshake with {peer} timed out");
                        return;
                    }
                },
            };
            phase.waiting();
            http(app, stream, (peer, local), phase, limits, stop).await
        }
    }
}

async fn http<S>(
    app: Router,
    io: S,
    (peer, local): (SocketAddr, Option<SocketAddr>),
    phase: Arc<Phase>,
    limits: ConnLimits,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        phase.busy();
        let mut req = req.map(|body| axum::body::Body::new(GuardedBody::new(body, &limits)));
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(local) = local {
            req.extensions_mut().insert(LocalAddr(local));
        }
        let app = app.clone();
        let phase = phase.clone();
        async move {
            let response = match app.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| PhaseBody::new(body, phase)))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // guard.rs keeps the clocks; hyper's would count idle time as head.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let done = tokio::select! {
        done = conn.as_mut() => done,
        _ = stop.cancelled() => {
            // Idle connections close now; a request in flight finishes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = done {
        tracing::debug!("API: connection from {peer}: {e}");
    }
}
