//! Talking to another jetpack host of the fleet: one HTTP/1.1 request to
//! its API, over TLS pinned to the certificate it registered (the SHA-256
//! in its hosts row: hosts have self-signed certificates, and the store is
//! what they already trust), carrying the fleet's shared secret so that
//! the host serves it as its own. Used to forward what only the host
//! holding an instance's dock can answer, and to fetch blobs.
//!
//! Why a direct call rather than LISTEN/NOTIFY: a deploy streams an image
//! and a log follow streams for minutes; both are HTTP already, and the
//! holder answers them with the same handlers as for its own users.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The header a forwarded request carries the fleet secret in.
pub const SECRET_HEADER: &str = "x-jetpack-fleet-secret";
/// The header naming the host that forwarded a request.
pub const FROM_HEADER: &str = "x-jetpack-forwarded-by";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the other host gets to answer with a status line.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("host {host}: its API URL {url:?} is not http(s)://address:port")]
    BadUrl { host: String, url: String },
    #[error("host {host} has registered no API certificate: it cannot be reached over TLS")]
    NoPin { host: String },
    #[error("host {host} serves its API without TLS: the fleet secret is not sent in clear")]
    Cleartext { host: String },
    #[error("host {host} at {url}: {why}")]
    Unreachable {
        host: String,
        url: String,
        why: String,
    },
}

/// Another host as its row in the hosts table describes it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub api_url: String,
    /// SHA-256 of its API certificate, colon-separated hex (empty: plain HTTP).
    pub pin: String,
}

impl Peer {
    fn unreachable(&self, why: impl std::fmt::Display) -> PeerError {
        PeerError::Unreachable {
            host: self.name.clone(),
            url: self.api_url.clone(),
            why: why.to_string(),
        }
    }

    /// (tls, host:port) of its API URL. A plain http:// URL is refused
    /// unless it is loopback: every request carries the fleet secret,
    /// which would let whoever reads it off the network act as any host.
    /// Loopback stays allowed (tests, several hosts on one machine): the
    /// secret never leaves the machine there.
    fn address(&self) -> Result<(bool, &str), PeerError> {
        let bad = || PeerError::BadUrl {
            host: self.name.clone(),
            url: self.api_url.clone(),
        };
        let (tls, rest) = if let Some(rest) = self.api_url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = self.api_url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(bad());
        }
        if !tls && !is_loopback(authority) {
            return Err(PeerError::Cleartext {
                host: self.name.clone(),
            });
        }
        Ok((tls, authority))
    }

    /// Whether requests can be sent to it at all (its URL is one this
    /// client accepts, TLS or loopback), checked before any connection.
    pub fn check(&self) -> Result<(), PeerError> {
        self.address().map(|_| ())
    }

    /// Sends `req` (its URI a path and query) with the fleet secret, and
    /// returns the answer's head once it comes; the body streams after.
    pub async fn send<B>(
        &self,
        secret: &str,
        me: &str,
        mut req: hyper::Request<B>,
    ) -> Result<hyper::Response<Incoming>, PeerError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (tls, authority) = self.address()?;
        let headers = req.headers_mut();
        let value =
            |v: &str| hyper::header::HeaderValue::from_str(v).map_err(|e| self.unreachable(e));
        headers.insert(SECRET_HEADER, value(secret)?);
        headers.insert(FROM_HEADER, value(me)?);
        headers.insert(hyper::header::HOST, value(authority)?);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
            .await
            .map_err(|_| self.unreachable("no connection within 5 s"))?
            .map_err(|e| self.unreachable(e))?;
        let _ = tcp.set_nodelay(true);
        let answer = async {
            if tls {
                if self.pin.is_empty() {
                    return Err(PeerError::NoPin {
                        host: self.name.clone(),
                    });
                }
                let config = pinned_config(&self.pin);
                let connector = tokio_rustls::TlsConnector::from(config);
                // The name is not checked (the pin is); rustls wants one.
                let name = ServerName::try_from("jetpack-host").map_err(|e| self.unreachable(e))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.unreachable(format!("TLS: {e}")))?;
                self.exchange(TokioIo::new(stream), req).await
            } else {
                self.exchange(TokioIo::new(tcp), req).await
            }
        };
        tokio::time::timeout(ANSWER_TIMEOUT, answer)
            .await
            .map_err(|_| self.unreachable("no answer within 30 s"))?
    }

    async fn exchange<IO, B>(
        &self,
        io: IO,
        req: hyper::Request<B>,
    ) -> Result<hyper::Response<Incoming>, PeerError>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(async move {
            // Ends with the response body (or the connection's failure,
            // which the body's reader sees).
            let _ = conn.await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(e))
    }
}

/// Whether the host of `authority` (host:port, an IPv6 address in
/// brackets) is this machine: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z)
/// or `localhost`. Other names are not resolved: what a name resolves to
/// may change, and the answer would be a guess.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(h, _)| h),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// A client configuration that accepts exactly the certificate whose
/// SHA-256 is `pin`, with its signatures checked as usual.
fn pinned_config(pin: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        pin: pin.to_string(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if crate::access::tls::fingerprint(end_entity).eq_ignore_ascii_case(&self.pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the host's certificate is not the one it registered".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(url: &str) -> Peer {
        Peer {
            name: "h1".into(),
            api_url: url.into(),
            pin: String::new(),
        }
    }

    #[test]
    fn api_urls_are_scheme_and_authority_only() {
        assert_eq!(
            peer("https://10.0.0.1:9090").address().unwrap(),
            (true, "10.0.0.1:9090")
        );
        assert_eq!(
            peer("http://[::1]:9090/").address().unwrap(),
            (false, "[::1]:9090")
        );
        for bad in [
            "ftp://h:1",
            "https://",
            "https://u@h:1",
            "https://h:1/x",
            "h:1",
        ] {
            assert!(peer(bad).address().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_goes_in_clear_to_loopback_only() {
        for here in [
            "http://127.0.0.1:8080",
            "http://127.5.6.7:8080/",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
            "http://localhost:8080",
            "http://LocalHost:8080",
        ] {
            assert!(peer(here).check().is_ok(), "{here}");
        }
        for away in [
            "http://10.0.0.12:8080",
            "http://[fe80::1]:8080",
            "http://[::]:8080",
            "http://0.0.0.0:8080",
            "http://jet2.example:8080",
            "http://localhost.example:8080",
            "http://127.0.0.1.example:8080",
        ] {
            let refused = peer(away).check().unwrap_err();
            assert!(
                matches!(&refused, PeerError::Cleartext { host } if host == "h1"),
                "{away}: {refused:?}"
            );
            assert_eq!(
                refused.to_string(),
                "host h1 serves its API without TLS: the fleet secret is not sent in clear"
            );
        }
        // TLS is pinned: any address will do.
        assert!(peer("https://10.0.0.12:8080").check().is_ok());
    }
}
