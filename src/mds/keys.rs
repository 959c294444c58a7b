//! The MDS's two keys and what they make: pod tokens and signatures
//! (spec/mds.md). A token is hex(HMAC-SHA512(mds.token-key, the pod UUID's
//! 16 bytes)), as Jetpack's: 512 bits, unforgeable without the key, bound
//! to one pod (a re-created pod has a new UUID, so a new token). A
//! signature is HMAC-SHA512(mds.signing-key, pod UUID bytes || content),
//! base64 as appc has it; verification also takes hex. Every comparison is
//! ring's constant-time `hmac::verify`.

use base64::Engine;
use ring::hmac;
use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{0} is not set in jetpack.conf (make one with `openssl rand -hex 32`)")]
    Missing(&'static str),
    #[error("{0} must be hex of at least 32 bytes (make one with `openssl rand -hex 32`)")]
    Weak(&'static str),
}

pub struct Keys {
    token: hmac::Key,
    signing: hmac::Key,
    fingerprint: String,
}

/// The domain of `Keys::fingerprint`'s hash: a fingerprint is never any
/// other hash of the same bytes.
const FINGERPRINT_LABEL: &[u8] = b"jetpack mds keys fingerprint v1";

/// The shortest key either may be, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

fn key(name: &'static str, hex_text: &str) -> Result<Vec<u8>, KeyError> {
    let text = hex_text.trim();
    if text.is_empty() {
        return Err(KeyError::Missing(name));
    }
    match hex::decode(text) {
        Ok(bytes) if bytes.len() >= MIN_KEY_BYTES => Ok(bytes),
        _ => Err(KeyError::Weak(name)),
    }
}

/// Names a pair of keys without revealing them: the first 128 bits of
/// SHA-256 over a fixed label and both keys (each length-prefixed, so no
/// two pairs hash the same bytes), hex. The keys are at least 256 random
/// bits, so this cannot be inverted, and 128 bits tell pairs apart.
fn fingerprint(token: &[u8], signing: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(FINGERPRINT_LABEL);
    for key in [token, signing] {
        ctx.update(&(key.len() as u64).to_be_bytes());
        ctx.update(key);
    }
    hex::encode(&ctx.finish().as_ref()[..16])
}

impl Keys {
    /// Both keys from their hex text, each required and at least 32 bytes.
    pub fn new(token_hex: &str, signing_hex: &str) -> Result<Keys, KeyError> {
        let token = key("mds.token-key", token_hex)?;
        let signing = key("mds.signing-key", signing_hex)?;
        Ok(Keys {
            token: hmac::Key::new(hmac::HMAC_SHA512, &token),
            signing: hmac::Key::new(hmac::HMAC_SHA512, &signing),
            fingerprint: fingerprint(&token, &signing),
        })
    }

    /// A name of this pair of keys that reveals neither (32 hex digits):
    /// what the MDS reports on its control socket so that a server can tell
    /// whether an MDS it finds running has the keys of its jetpack.conf.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token of pod `uuid`.
    pub fn token(&self, uuid: &Uuid) -> String {
        hex::encode(hmac::sign(&self.token, uuid.as_bytes()).as_ref())
    }

    /// Whether `token` is pod `uuid`'s.
    pub fn token_is(&self, uuid: &Uuid, token: &str) -> bool {
        match hex::decode(token) {
            Ok(tag) => hmac::verify(&self.token, uuid.as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }

    /// `content` signed for pod `uuid`, base64.
    pub fn sign(&self, uuid: &Uuid, content: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.signing);
        ctx.update(uuid.as_bytes());
        ctx.update(content);
        base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref())
    }

    /// Whether `signature` (base64, or hex) is `content` signed for `uuid`.
    pub fn signature_is(&self, uuid: &Uuid, content: &[u8], signature: &str) -> bool {
        decode_signature(signature).is_some_and(|tag| self.tag_is(uuid, content, &tag))
    }

    /// Whether `tag` (decoded) is `content` signed for `uuid`.
    pub fn tag_is(&self, uuid: &Uuid, content: &[u8], tag: &[u8]) -> bool {
        let mut message = Vec::with_capacity(16 + content.len());
        message.extend_from_slice(uuid.as_bytes());
        message.extend_from_slice(content);
        hmac::verify(&self.signing, &message, tag).is_ok()
    }
}

/// A signature's bytes from its base64 (appc's encoding) or hex text.
pub fn decode_signature(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|t| t.len() == 64)
        .or_else(|| hex::decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn keys_must_be_present_hex_and_long() {
        assert_eq!(
            Keys::new("", B).err(),
            Some(KeyError::Missing("mds.token-key"))
        );
        assert_eq!(
            Keys::new(A, " ").err(),
            Some(KeyError::Missing("mds.signing-key"))
        );
        assert_eq!(
            Keys::new("abcd", B).err(),
            Some(KeyError::Weak("mds.token-key"))
        );
        assert_eq!(
            Keys::new(A, &"zz".repeat(32)).err(),
            Some(KeyError::Weak("mds.signing-key"))
        );
        assert!(Keys::new(A, B).is_ok());
    }

    #[test]
    fn tokens_are_bound_to_a_pod_and_a_key() {
        let keys = Keys::new(A, B).unwrap();
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.token(&one);
        assert_eq!(token.len(), 128, "512 bits, hex");
        assert!(keys.token_is(&one, &token));
        assert!(!keys.token_is(&two, &token));
        assert!(!keys.token_is(&one, &token[..126]));
        assert!(!keys.token_is(&one, "not hex"));
        let other = Keys::new(B, A).unwrap();
        assert!(!other.token_is(&one, &token));
        // Jetpack's construction: HMAC-SHA512 of the UUID's 16 bytes.
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, &hex::decode(A).unwrap()),
            one.as_bytes(),
        );
        assert_eq!(token, hex::encode(expected.as_ref()));
    }

    #[test]
    fn signatures_verify_for_the_same_pod_and_content_only() {
        let keys = Keys::new(A, B).unwrap();
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let sig = keys.sign(&one, b"hello");
        assert!(keys.signature_is(&one, b"hello", &sig));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sig)
            .unwrap();
        assert!(
            keys.signature_is(&one, b"hello", &hex::encode(&raw)),
            "hex too"
        );
        assert!(!keys.signature_is(&one, b"hellO", &sig));
        assert!(!keys.signature_is(&two, b"hello", &sig));
        assert!(!keys.signature_is(&one, b"hello", "!!!"));
        assert!(!keys.signature_is(&one, b"hello", ""));
        // The token key does not sign.
        assert_ne!(Keys::new(A, A).unwrap().sign(&one, b"hello"), sig);
    }

    #[test]
    fn a_fingerprint_names_both_keys_and_reveals_neither() {
        let keys = Keys::new(A, B).unwrap();
        let print = keys.fingerprint();
        assert_eq!(print.len(), 32, "128 bits, hex");
        assert!(print.bytes().all(|b| b.is_ascii_hexdigit()));
        // The same keys (whatever their spelling) give the same name.
        assert_eq!(
            Keys::new(&A.to_uppercase(), &format!(" {B}\n"))
                .unwrap()
                .fingerprint(),
            print
        );
        // Either key changed, or the two swapped: another name.
        let c = "0123456789abcdef".repeat(4);
        assert_ne!(Keys::new(&c, B).unwrap().fingerprint(), print);
        assert_ne!(Keys::new(A, &c).unwrap().fingerprint(), print);
        assert_ne!(Keys::new(B, A).unwrap().fingerprint(), print);
        // Nothing of either key shows, and it is not a bare hash of them.
        for key in [A, B] {
            for window in key.as_bytes().windows(8) {
                assert!(!print.contains(std::str::from_utf8(window).unwrap()));
            }
        }
        let bare = ring::digest::digest(
            &ring::digest::SHA256,
            &[hex::decode(A).unwrap(), hex::decode(B).unwrap()].concat(),
        );
        assert!(!hex::encode(bare.as_ref()).starts_with(print));
        // The construction, pinned: a change of it is a change of protocol.
        let mut message = FINGERPRINT_LABEL.to_vec();
        for key in [A, B] {
            let bytes = hex::decode(key).unwrap();
            message.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            message.extend_from_slice(&bytes);
        }
        let expected = ring::digest::digest(&ring::digest::SHA256, &message);
        assert_eq!(print, hex::encode(&expected.as_ref()[..16]));
    }
}
