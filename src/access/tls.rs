//! Owns the API's TLS identity: loads a PEM certificate chain and key into a
//! rustls configuration (refusing expired, unreadable or mismatched files
//! with a clear error), or makes a self-signed pair on first start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::users::write_private;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate {path}: {why}")]
    Certificate { path: String, why: String },
    #[error("private key {path}: {why}")]
    Key { path: String, why: String },
    #[error("{0} exists but {1} does not: give both or neither")]
    HalfPair(String, String),
    #[error("making a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A loaded identity: the rustls configuration and what to log about it.
pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, colon-separated hex.
    pub fingerprint: String,
    pub not_after: String,
}

pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes a self-signed certificate and key when neither file exists.
/// Returns whether it made them.
pub fn ensure_self_signed(certfile: &Path, keyfile: &Path) -> Result<bool, TlsError> {
    match (certfile.exists(), keyfile.exists()) {
        (true, true) => return Ok(false),
        (true, false) => {
            return Err(TlsError::HalfPair(
                certfile.display().to_string(),
                keyfile.display().to_string(),
            ))
        }
        (false, true) => {
            return Err(TlsError::HalfPair(
                keyfile.display().to_string(),
                certfile.display().to_string(),
            ))
        }
        (false, false) => {}
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if host != "localhost" {
        names.push(host);
    }
    let generated = self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key_err = |e: super::users::UsersError| TlsError::Key {
        path: keyfile.display().to_string(),
        why: e.to_string(),
    };
    write_private(keyfile, generated.signing_key.serialize_pem().as_bytes()).map_err(key_err)?;
    write_private(certfile, generated.cert.pem().as_bytes()).map_err(|e| {
        TlsError::Certificate {
            path: certfile.display().to_string(),
            why: e.to_string(),
        }
    })?;
    Ok(true)
}

/// A certificate for `names`, valid from now for `SELF_SIGNED_DAYS`.
fn self_signed(names: Vec<String>) -> Result<rcgen::CertifiedKey<rcgen::KeyPair>, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(names)?;
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(SELF_SIGNED_DAYS * 86400)).into();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jetpack self-signed");
    let signing_key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&signing_key)?;
    Ok(rcgen::CertifiedKey { cert, signing_key })
}

/// How long a first-start certificate lasts; replace it with a real one.
const SELF_SIGNED_DAYS: u64 = 825;

/// Loads the certificate chain and key, checks the leaf is valid now.
pub fn load(certfile: &Path, keyfile: &Path) -> Result<Identity, TlsError> {
    let cert_err = |why: String| TlsError::Certificate {
        path: certfile.display().to_string(),
        why,
    };
    let pem = std::fs::read(certfile).map_err(|e| cert_err(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| cert_err("no CERTIFICATE block in it".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| cert_err(format!("not an X.509 certificate: {e}")))?;
    let validity = parsed.validity();
    let not_after = validity.not_after.to_string();
    if !validity.is_valid() {
        return Err(cert_err(format!(
            "not valid now (valid from {} to {not_after})",
            validity.not_before
        )));
    }
    let key_pem = std::fs::read(keyfile).map_err(|e| TlsError::Key {
        path: keyfile.display().to_string(),
        why: e.to_string(),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: keyfile.display().to_string(),
        why: format!("no usable private key: {e}"),
    })?;
    let fingerprint = fingerprint(leaf);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Key {
            path: keyfile.display().to_string(),
            why: format!("does not match the certificate: {e}"),
        })?;
    // HTTP/1.1 only: with HTTP/2, an early answer to an upload (413, 401)
    // resets the stream and clients such as curl report a transport error
    // instead of the status. Keep-alive gives the API what it needs.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        assert!(ensure_self_signed(&cert, &key).unwrap());
        assert!(!ensure_self_signed(&cert, &key).unwrap());
        let id = load(&cert, &key).unwrap();
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn half_pairs_garbage_and_mismatched_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "junk").unwrap();
        assert!(matches!(
            ensure_self_signed(&cert, &key),
            Err(TlsError::HalfPair(..))
        ));
        std::fs::write(&key, "junk").unwrap();
        assert!(matches!(
            load(&cert, &key),
            Err(TlsError::Certificate { .. })
        ));
        let other = tempfile::tempdir().unwrap();
        let (c2, k2) = (other.path().join("c.pem"), other.path().join("k.pem"));
        ensure_self_signed(&c2, &k2).unwrap();
        std::fs::remove_file(&cert).unwrap();
        std::fs::remove_file(&key).unwrap();
        ensure_self_signed(&cert, &key).unwrap();
        assert!(matches!(load(&cert, &k2), Err(TlsError::Key { .. })));
    }
}
