//! TLS on the hangar, through OpenSSL: a real IncludeOS instance speaks TLS
//! 1.2 with the single suite AES256-SHA (RSA key exchange, CBC, SHA-1) and
//! no SNI (spec/uplink.md 3), which rustls cannot offer. So the hangar has
//! its own identity, an RSA key (the suite needs RSA key exchange), made
//! self-signed with OpenSSL on first start; the API keeps rustls.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVersion};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

use crate::access::tls::TlsError;
use crate::access::users::write_private;

/// What the hangar offers: modern suites for modern clients, and the one
/// IncludeOS needs. TLS 1.3 suites are separate in OpenSSL and stay on.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:AES256-SHA";

fn err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Certificate {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// Makes an RSA self-signed certificate and key for the hangar when
/// neither file exists; returns whether it made them.
pub fn ensure_self_signed(certfile: &Path, keyfile: &Path) -> Result<bool, TlsError> {
    match (certfile.exists(), keyfile.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        (true, false) | (false, true) => {
            return Err(TlsError::HalfPair(
                certfile.display().to_string(),
                keyfile.display().to_string(),
            ))
        }
    }
    let generate = || -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("CN", &host)?;
        let name = name.build();
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let mut cert = X509::builder()?;
        cert.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        cert.set_serial_number(&serial)?;
        cert.set_subject_name(&name)?;
        cert.set_issuer_name(&name)?;
        cert.set_pubkey(&key)?;
        let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(825)?);
        cert.set_not_before(&from)?;
        cert.set_not_after(&until)?;
        let san = SubjectAlternativeName::new()
            .dns(&host)
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&cert.x509v3_context(None, None))?;
        cert.append_extension(san)?;
        cert.sign(&key, MessageDigest::sha256())?;
        Ok((cert.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
    };
    let (cert, key) = generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(keyfile, &key).map_err(|e| err(keyfile, e))?;
    write_private(certfile, &cert).map_err(|e| err(certfile, e))?;
    Ok(true)
}

/// An OpenSSL acceptor for the hangar: TLS 1.2 and 1.3, AES256-SHA among
/// the TLS 1.2 suites, the certificate checked for being valid now.
pub fn acceptor(certfile: &Path, keyfile: &Path) -> Result<SslAcceptor, TlsError> {
    let pem = std::fs::read(certfile).map_err(|e| err(certfile, e))?;
    let leaf = X509::from_pem(&pem).map_err(|e| err(certfile, format!("not PEM: {e}")))?;
    let now = Asn1Time::days_from_now(0).map_err(|e| err(certfile, e))?;
    if leaf.not_after() < now || leaf.not_before() > now {
        return Err(err(
            certfile,
            format!(
                "not valid now (valid from {} to {})",
                leaf.not_before(),
                leaf.not_after()
            ),
        ));
    }
    let build = || -> Result<SslAcceptor, openssl::error::ErrorStack> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        b.set_cipher_list(CIPHERS)?;
        // Our order wins: a client listing AES256-SHA first still gets a
        // forward-secret suite when it offers one; AES256-SHA (no forward
        // secrecy) only goes to clients that speak nothing else, as
        // IncludeOS does.
        b.set_options(openssl::ssl::SslOptions::CIPHER_SERVER_PREFERENCE);
        b.set_certificate_chain_file(certfile)?;
        b.set_private_key_file(keyfile, SslFiletype::PEM)?;
        b.check_private_key()?;
        // Idle sessions give their record buffers back: thousands of
        // docked instances are idle most of the time.
        b.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
        Ok(b.build())
    };
    build().map_err(|e| TlsError::Key {
        path: keyfile.display().to_string(),
        why: format!("cannot serve with {} and this key: {e}", certfile.display()),
    })
}

/// SHA-256 fingerprint of the hangar certificate, for the log.
pub fn fingerprint(certfile: &Path) -> Option<String> {
    let pem = std::fs::read(certfile).ok()?;
    let cert = X509::from_pem(&pem).ok()?;
    Some(crate::access::tls::fingerprint(&cert.to_der().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_rsa_identity_makes_an_acceptor() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        assert!(ensure_self_signed(&cert, &key).unwrap());
        assert!(!ensure_self_signed(&cert, &key).unwrap());
        acceptor(&cert, &key).unwrap();
        assert!(fingerprint(&cert).is_some());
    }
}
