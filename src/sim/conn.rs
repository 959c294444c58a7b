//! The network side of one simulated instance: TCP from its `--source`
//! address, TLS as IncludeOS speaks it (OpenSSL, TLS 1.2, the single suite
//! AES256-SHA, no SNI, no host name check, spec/uplink.md 3), and the two
//! HTTP exchanges of spec/uplink.md 2: `POST /auth` and the `GET /dock`
//! upgrade. The auth connection is kept for the dock when the hangar keeps
//! it alive, as the instance's HTTP client does with its connection.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::BytesMut;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslMode, SslOptions, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_openssl::SslStream;

use super::wire;
use super::SimError;
use crate::hangar::frame::FrameError;
use crate::hangar::ws::{read_response, Role, WsError, WsStream};

/// The IncludeOS client gives up on an auth after 15 s; the dock gets as long.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest transport accepted from the hangar: an UPDATE holds a whole
/// image. Buffers grow only as bytes arrive.
pub const MAX_TRANSPORT: usize = 256 << 20;

/// A session token is a header value; the hangar's are about 100 bytes.
const MAX_TOKEN: usize = 4096;

/// Why one auth, dock or docked session failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("binding the source address {addr}: {source}")]
    Bind { addr: IpAddr, source: io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Ws(#[from] WsError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("the session token is not text")]
    Token,
    #[error("not a WebSocket upgrade: {0}")]
    Upgrade(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the hangar stopped reading")]
    Stuck,
}

/// A connection to the hangar, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(SslStream<TcpStream>),
}

impl Conn {
    /// What the connection is, for `--verbose`: the TLS version and suite.
    pub fn describe(&self) -> String {
        match self {
            Conn::Plain(_) => "plain TCP".into(),
            Conn::Tls(s) => {
                let ssl = s.ssl();
                let suite = ssl.current_cipher().map_or("no suite", |c| c.name());
                format!("{} {suite}", ssl.version_str())
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The TLS client of an instance. `certs`: a PEM file, or a folder of PEM
/// files like the instance's certs folder; given, the chain is verified
/// against them (verify=true), else nothing is verified.
///
/// A bare context rather than `SslConnector::builder`: that one loads the
/// system's default CA paths, which the instance does not have, and which
/// OpenSSL 3 scans (a directory read) on every handshake, even when
/// nothing is verified; thousands of handshakes a second spent their time
/// there.
pub fn tls_context(certs: Option<&Path>) -> Result<SslContext, SimError> {
    let tls = |e: openssl::error::ErrorStack| SimError::Tls(e.to_string());
    let mut b = SslContext::builder(SslMethod::tls_client()).map_err(tls)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls)?;
    b.set_max_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls)?;
    b.set_cipher_list("AES256-SHA").map_err(tls)?;
    b.set_options(SslOptions::NO_COMPRESSION);
    // What an async stream needs (a write is retried with a moved buffer),
    // and idle docks give their record buffers back (20,000 of them idle).
    b.set_mode(
        SslMode::AUTO_RETRY
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::RELEASE_BUFFERS,
    );
    match certs {
        None => b.set_verify(SslVerifyMode::NONE),
        Some(path) => {
            let mut files = Vec::new();
            if path.is_dir() {
                let entries = std::fs::read_dir(path)
                    .map_err(|e| SimError::Certs(path.display().to_string(), e.to_string()))?;
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.extension().is_some_and(|x| x == "pem" || x == "crt") {
                        files.push(p);
                    }
                }
                files.sort();
            } else {
                files.push(path.to_path_buf());
            }
            let mut added = 0;
            for file in &files {
                let certs_err = |why: String| SimError::Certs(file.display().to_string(), why);
                let pem = std::fs::read(file).map_err(|e| certs_err(e.to_string()))?;
                let certs =
                    X509::stack_from_pem(&pem).map_err(|e| certs_err(format!("not PEM: {e}")))?;
                for cert in certs {
                    b.cert_store_mut()
                        .add_cert(cert)
                        .map_err(|e| certs_err(e.to_string()))?;
                    added += 1;
                }
            }
            if added == 0 {
                return Err(SimError::Certs(
                    path.display().to_string(),
                    "no PEM certificate found".into(),
                ));
            }
            b.set_verify(SslVerifyMode::PEER);
        }
    }
    Ok(b.build())
}

/// Where and how one instance connects.
pub struct Endpoint<'a> {
    pub addrs: &'a [SocketAddr],
    pub source: Option<IpAddr>,
    pub tls: Option<&'a SslContext>,
}

async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, LinkError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|source| LinkError::Connect { addr, source })?;
    if let Some(src) = source {
        // Ports of closed connections linger in TIME_WAIT; let a new bind
        // reuse them, or a reconnecting fleet runs out.
        socket
            .set_reuseaddr(true)
            .and_then(|()| socket.bind(SocketAddr::new(src, 0)))
            .map_err(|source| LinkError::Bind { addr: src, source })?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|source| LinkError::Connect { addr, source })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A new connection to the hangar (the first address that answers).
pub async fn connect(end: &Endpoint<'_>) -> Result<Conn, LinkError> {
    let mut last = None;
    let mut stream = None;
    for &addr in end.addrs {
        match tcp(addr, end.source).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e),
        (None, None) => return Err(LinkError::Io(io::Error::other("the host has no address"))),
    };
    let Some(context) = end.tls else {
        return Ok(Conn::Plain(stream));
    };
    // No SNI and no host name check: nothing but the context's settings.
    let mut ssl = Ssl::new(context).map_err(|e| LinkError::Tls(e.to_string()))?;
    ssl.set_connect_state();
    let mut tls = SslStream::new(ssl, stream).map_err(|e| LinkError::Tls(e.to_string()))?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    Ok(Conn::Tls(tls))
}

/// A successful auth: the session token, and the connection if the
/// hangar keeps it open (with any bytes read past the response).
pub struct Authed {
    pub token: String,
    pub kept: Option<(Conn, BytesMut)>,
}

/// `POST /auth` on a new connection. Only 200 is success, and the whole
/// body is the token.
pub async fn auth(end: &Endpoint<'_>, request: &[u8]) -> Result<Authed, LinkError> {
    let mut conn = connect(end).await?;
    conn.write_all(request).await?;
    conn.flush().await?;
    let mut buf = BytesMut::with_capacity(512);
    let (head, body) = read_response(&mut conn, &mut buf, MAX_TOKEN).await?;
    if head.status != 200 {
        return Err(LinkError::Status(head.status));
    }
    let token = String::from_utf8(body).map_err(|_| LinkError::Token)?;
    let kept = wire::keeps_alive(&head).then_some((conn, buf));
    Ok(Authed { token, kept })
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
fn ws_key(fallback: u64) -> String {
    let mut nonce = [0u8; 16];
    if getrandom::fill(&mut nonce).is_err() {
        // The key only has to differ between handshakes.
        nonce[..8].copy_from_slice(&fallback.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// `GET /dock` on the auth connection if it was kept, else on a new one.
pub async fn dock(
    end: &Endpoint<'_>,
    authority: &str,
    token: &str,
    kept: Option<(Conn, BytesMut)>,
    nonce: u64,
) -> Result<WsStream<Conn>, LinkError> {
    let (mut conn, mut buf) = match kept {
        Some(k) => k,
        None => (connect(end).await?, BytesMut::with_capacity(512)),
    };
    let key = ws_key(nonce);
    conn.write_all(&wire::dock_request(authority, &key, token))
        .await?;
    conn.flush().await?;
    buf.clear();
    let (head, _) = read_response(&mut conn, &mut buf, MAX_TOKEN).await?;
    wire::check_upgrade(&head, &key).map_err(LinkError::Upgrade)?;
    Ok(WsStream::new(conn, Role::Client, MAX_TRANSPORT, &buf))
}
