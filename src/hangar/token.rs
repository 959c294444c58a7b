//! Instance ids and hangar session tokens. An instance authenticates with
//! an uplink's token and gets back an opaque session token (spec/uplink.md
//! 2.1: the whole response body), which it presents at dock. Ours is
//! `<instance id>.<expiry unix s>.<HMAC-SHA256, base64url>` under a key the
//! server draws at start: bound to the instance and an expiry, checked in
//! constant time, worthless after a restart (instances re-auth on every
//! reconnect anyway).

use base64::Engine;
use ring::hmac;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed session token")]
    Malformed,
    #[error("session token signature does not verify")]
    BadSignature,
    #[error("session token expired")]
    Expired,
    #[error(
        "invalid instance id {0:?}: 1-64 hex digits (an SMBIOS UUID without dashes, or a MAC)"
    )]
    BadInstanceId(String),
    #[error("drawing the session key: {0}")]
    Random(String),
}

/// An instance's id as it authenticates: the SMBIOS UUID as 32 hex digits,
/// or (instances built before mid-2018) a MAC address. Opaque otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn new(s: &str) -> Result<InstanceId, TokenError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'-')
            && s.bytes().any(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(InstanceId(s.to_ascii_lowercase()))
        } else {
            Err(TokenError::BadInstanceId(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct SessionKeys {
    key: hmac::Key,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl SessionKeys {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<SessionKeys, TokenError> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| TokenError::Random("the system random source failed".into()))?;
        Ok(SessionKeys { key })
    }

    /// A token for `instance`, valid until `now + ttl` (seconds).
    pub fn issue(&self, instance: &InstanceId, now: u64, ttl: u64) -> String {
        let body = format!("{}.{}", instance, now + ttl);
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", b64().encode(tag.as_ref()))
    }

    /// The instance a token was issued to, if it is ours and not expired.
    pub fn verify(&self, token: &str, now: u64) -> Result<InstanceId, TokenError> {
        if token.len() > 256 {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (id, expiry) = body.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let tag = b64().decode(tag).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, body.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if now >= expiry {
            return Err(TokenError::Expired);
        }
        InstanceId::new(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_bind_and_expire() {
        let keys = SessionKeys::generate().unwrap();
        let id = InstanceId::new("0123456789abcdef0123456789ABCDEF").unwrap();
        assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
        let token = keys.issue(&id, 1000, 60);
        assert_eq!(keys.verify(&token, 1010), Ok(id.clone()));
        assert_eq!(keys.verify(&token, 1060), Err(TokenError::Expired));
        // Another instance's id in a copied token breaks the signature.
        let forged = token.replacen("0123", "ffff", 1);
        assert_eq!(keys.verify(&forged, 1010), Err(TokenError::BadSignature));
        let other = SessionKeys::generate().unwrap();
        assert_eq!(other.verify(&token, 1010), Err(TokenError::BadSignature));
        for junk in ["", "a.b", "x.y.z", &"a".repeat(300)] {
            assert!(keys.verify(junk, 0).is_err(), "{junk}");
        }
    }

    #[test]
    fn instance_ids_are_hex_or_mac_and_bounded() {
        assert!(InstanceId::new("c0:01:0a:00:00:2a").is_ok());
        for bad in ["", "../etc", "zz", &"a".repeat(65), "a b", "::"] {
            assert!(InstanceId::new(bad).is_err(), "{bad:?}");
        }
    }
}
