//! The benches' load generator: blocking HTTP/1.1 with keep-alive over a
//! plain TCP connection or over rustls (trusting exactly the server's
//! self-signed certificate), requests serialised once by the caller, one
//! reused buffer, parsing no more than the status line and Content-Length.
//! Include it with `#[path = "support/http.rs"] mod http;`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Trusts exactly the server's (self-signed) certificate.
pub fn client_tls(certfile: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(certfile).expect("reading the server certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One keep-alive connection over `S` (a `TcpStream`, or rustls over one).
pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn bad_response(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

impl Client<TlsStream> {
    /// TLS to 127.0.0.1:`port`.
    pub fn connect(port: u16, tls: &Arc<rustls::ClientConfig>) -> io::Result<Client<TlsStream>> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
        Ok(Client {
            stream: rustls::StreamOwned::new(conn, tcp),
            buf: vec![0; 64 * 1024],
        })
    }
}

impl Client<TcpStream> {
    /// Plain TCP to `address` (`host:port`).
    pub fn open(address: &str) -> io::Result<Client<TcpStream>> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: vec![0; 16 * 1024],
        })
    }
}

impl<S: Read + Write> Client<S> {
    /// Sends a serialised request (head and body) and reads the answer:
    /// its status and body.
    pub fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, &[u8])> {
        self.stream.write_all(request)?;
        self.stream.flush()?;
        let mut filled = 0;
        let head_end = loop {
            if filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let from = filled.saturating_sub(3);
            filled += n;
            if let Some(i) = self.buf[from..filled]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break from + i + 4;
            }
        };
        let head = &self.buf[..head_end];
        let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| bad_response("no status line"))?;
        let mut length = None;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return Err(bad_response("chunked answers are not read by this client"));
            }
        }
        let end = head_end + length.ok_or_else(|| bad_response("no Content-Length"))?;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        while filled < end {
            let n = self.stream.read(&mut self.buf[filled..end])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
        }
        if filled > end {
            return Err(bad_response(
                "bytes after the answer (nothing was pipelined)",
            ));
        }
        Ok((status, &self.buf[head_end..end]))
    }

    /// `exchange`, insisting on `want`; a server bug stops the bench with
    /// the request and the answer.
    pub fn expect(&mut self, request: &[u8], want: u16) -> &[u8] {
        match self.exchange(request) {
            Ok((status, body)) if status == want => body,
            Ok((status, body)) => panic!(
                "{}: answered {status} (wanted {want}): {}",
                request_line(request),
                String::from_utf8_lossy(body)
            ),
            Err(e) => panic!("{}: {e}", request_line(request)),
        }
    }
}

fn request_line(request: &[u8]) -> String {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}
