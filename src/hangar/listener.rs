//! The hangar's port: TCP, TLS through OpenSSL when on, and the two HTTP
//! requests of spec/uplink.md 2 (`POST /auth`, `GET /dock`); everything
//! else is 404 or 405. The HTTP is read by hand with size caps and
//! timeouts (a slow client cannot hold a task forever), since after the
//! upgrade the bytes belong to our own WebSocket codec.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ws::{self, WsError};
use super::{AuthError, Hangar};
use crate::metrics::figures::AuthOutcome;
use crate::net::{Admitted, ConnGate, GatedListener};

/// Largest request head, and largest `/auth` body.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_AUTH_BODY: usize = 4 * 1024;
/// From accept to a whole request (TLS handshake included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Serves the hangar on `listener` until `stop` is cancelled; `gate`
/// bounds its connections (its share of the descriptors).
pub async fn serve(
    hangar: Arc<Hangar>,
    listener: TcpListener,
    tls: Option<Arc<SslAcceptor>>,
    gate: Arc<ConnGate>,
    stop: CancellationToken,
) {
    let listener = GatedListener::new(listener, gate);
    loop {
        let Admitted { tcp, peer, permit } = tokio::select! {
            _ = stop.cancelled() => break,
            admitted = listener.accept() => admitted,
        };
        let hangar = hangar.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(hangar, tcp, peer, stop).await,
                Some(acceptor) => {
                    let stream = match Ssl::new(acceptor.context())
                        .and_then(|ssl| tokio_openssl::SslStream::new(ssl, tcp))
                    {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!("hangar: TLS setup: {e}");
                            return;
                        }
                    };
                    let mut stream = stream;
                    let handshake =
                        tokio::time::timeout(REQUEST_TIMEOUT, Pin::new(&mut stream).accept());
                    match handshake.await {
                        Ok(Ok(())) => connection(hangar, stream, peer, stop).await,
                        Ok(Err(e)) => {
                            tracing::info!("hangar: TLS handshake with {peer} failed: {e}")
                        }
                        Err(_) => tracing::info!("hangar: TLS handshake with {peer} timed out"),
                    }
                }
            }
        });
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    io: &mut S,
    status: u16,
    reason: &str,
    body: &[u8],
    keep_alive: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    io.write_all(&out).await?;
    io.flush().await
}

/// One request's verdict, decided without holding the parsed head.
#[derive(Debug)]
pub enum Route {
    Auth {
        body_len: usize,
        keep_alive: bool,
    },
    Dock {
        key: String,
        bearer: Option<String>,
    },
    Refuse {
        status: u16,
        reason: &'static str,
        why: String,
    },
}

/// Reads one request head (through its blank line) into a verdict. Pure,
/// and fuzzed (fuzz/fuzz_targets/hangar_head.rs).
pub fn route(head: &[u8]) -> Route {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let refuse = |status, reason, why: String| Route::Refuse {
        status,
        reason,
        why,
    };
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return refuse(400, "Bad Request", "incomplete head".into())
        }
        Err(e) => return refuse(400, "Bad Request", format!("malformed request: {e}")),
    }
    let method = req.method.unwrap_or("");
    // Any query or path in the instance's URL is dropped by the client.
    let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
    let headers = &*req.headers;
    match (method, path) {
        ("POST", "/auth") => {
            let len = match ws::header(headers, "content-length").map(|v| v.trim().parse::<usize>())
            {
                Some(Ok(n)) if n <= MAX_AUTH_BODY => n,
                Some(Ok(n)) => {
                    return refuse(413, "Payload Too Large", format!("auth body of {n} bytes"))
                }
                _ => return refuse(411, "Length Required", "auth without Content-Length".into()),
            };
            let keep_alive = !ws::header_has(headers, "connection", "close");
            Route::Auth {
                body_len: len,
                keep_alive,
            }
        }
        ("GET", "/dock") => {
            if !ws::header_has(headers, "upgrade", "websocket")
                || !ws::header_has(headers, "connection", "upgrade")
                || ws::header(headers, "sec-websocket-version").map(str::trim) != Some("13")
            {
                return refuse(
                    400,
                    "Bad Request",
                    "dock without a WebSocket version 13 upgrade".into(),
                );
            }
            let Some(key) = ws::header(headers, "sec-websocket-key") else {
                return refuse(400, "Bad Request", "dock without Sec-WebSocket-Key".into());
            };
            let bearer = ws::header(headers, "authorization")
                .and_then(|v| v.trim().strip_prefix("Bearer "))
                .map(|t| t.trim().to_string());
            Route::Dock {
                key: key.to_string(),
                bearer,
            }
        }
        (_, "/auth") | (_, "/dock") => {
            refuse(405, "Method Not Allowed", format!("{method} {path}"))
        }
        _ => refuse(404, "Not Found", format!("{method} {path}")),
    }
}

/// Serves one connection: auths (keep-alive), then at most one dock.
async fn connection<S>(hangar: Arc<Hangar>, mut io: S, peer: SocketAddr, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let head =
            tokio::time::timeout(REQUEST_TIMEOUT, ws::read_head(&mut io, &mut buf, MAX_HEAD));
        let head_len = match head.await {
            Ok(Ok(n)) => n,
            Ok(Err(WsError::Closed)) => return,
            Ok(Err(WsError::HeadTooLarge(n))) => {
                tracing::info!("hangar: {peer}: request head over {n} bytes");
                let _ = respond(&mut io, 431, "Request Header Fields Too Large", b"", false).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!("hangar: {peer}: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(
                    "hangar: {peer}: no whole request within {}s",
                    REQUEST_TIMEOUT.as_secs()
                );
                return;
            }
        };
        let verdict = route(&buf[..head_len]);
        buf.advance(head_len);
        match verdict {
            Route::Refuse {
                status,
                reason,
                why,
            } => {
                tracing::info!("hangar: {peer}: {status} {why}");
                let _ = respond(&mut io, status, reason, reason.as_bytes(), false).await;
                return;
            }
            Route::Auth {
                body_len,
                keep_alive,
            } => {
                let body = tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    ws::read_body(&mut io, &mut buf, body_len),
                );
                let Ok(Ok(body)) = body.await else {
                    tracing::info!("hangar: {peer}: auth body cut short or too slow");
                    return;
                };
                let h = hangar.clone();
                let answer =
                    tokio::task::spawn_blocking(move || h.authenticate(peer.ip(), &body)).await;
                let answer = match answer {
                    Ok(a) => a,
                    Err(e) => Err(AuthError::Store(e.to_string())),
                };
                crate::metrics::figures().hangar.auth(match &answer {
                    Ok(_) => AuthOutcome::Accepted,
                    Err(AuthError::RateLimited(_)) => AuthOutcome::RateLimited,
                    Err(AuthError::Store(_)) => AuthOutcome::Error,
                    Err(_) => AuthOutcome::Refused,
                });
                let sent = match answer {
                    Ok(token) => respond(&mut io, 200, "OK", token.as_bytes(), keep_alive).await,
                    Err(e) => {
                        let (status, reason) = match &e {
                            AuthError::RateLimited(_) => (429, "Too Many Requests"),
                            AuthError::UnknownKey => (401, "Unauthorized"),
                            AuthError::Malformed(_) => (400, "Bad Request"),
                            AuthError::Token(_) => (403, "Forbidden"),
                            AuthError::Store(_) => (500, "Internal Server Error"),
                        };
                        if !matches!(e, AuthError::RateLimited(_)) {
                            tracing::info!("hangar: {peer}: auth refused: {e}");
                        }
                        respond(&mut io, status, reason, reason.as_bytes(), false).await
                    }
                };
                if sent.is_err() || !keep_alive {
                    return;
                }
            }
            Route::Dock { key, bearer } => {
                let checked = match bearer.as_deref() {
                    Some(t) => hangar
                        .check_dock(t)
                        .map_err(|e| format!("dock refused: {e}")),
                    None => Err("dock without a bearer token".to_string()),
                };
                let id = match checked {
                    Ok(id) => id,
                    Err(why) => {
                        tracing::info!("hangar: {peer}: {why}");
                        let _ = respond(&mut io, 401, "Unauthorized", b"Unauthorized", false).await;
                        return;
                    }
                };
                let accept = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    ws::accept_key(&key)
                );
                if io.write_all(accept.as_bytes()).await.is_err() || io.flush().await.is_err() {
                    return;
                }
                let limit = hangar.settings.max_transport as usize + super::frame::HEADER_LEN;
                let stream = ws::WsStream::new(io, ws::Role::Server, limit, &buf);
                drop(buf);
                super::session::run(hangar, id, peer, stream, stop).await;
                return;
            }
        }
    }
}
