//! The hangar: where IncludeOS instances dock (spec/uplink.md). It owns
//! the listener instances dock to (`POST /auth`, `GET /dock`, nothing else), the
//! WebSocket and transport codecs, sessions, the fleet of known instances
//! and live-update deploys. It knows no REST: the API reads the fleet and
//! starts deploys through this module's types.
//!
//! - `frame`: transports (code, little-endian length, bytes)
//! - `ws`: RFC 6455 frames without UTF-8 checks, and the HTTP around them
//! - `token`: instance ids and signed session tokens
//! - `listener`: the port, TLS (OpenSSL: AES256-SHA), auth, the WebSocket upgrade
//! - `session`: one docked instance: frames in, pings and transports out
//! - `fleet`: every instance, in memory and in the store, and lists of them
//! - `deploy`: live update as a job, one per instance at a time
//! - `upgrade`: rebuild an instance's image and deploy it, as one job
//! - `tls`: the hangar's RSA identity and OpenSSL acceptor

pub mod deploy;
pub mod fleet;
pub mod frame;
pub mod listener;
pub mod session;
pub mod tls;
pub mod token;
pub mod upgrade;
pub mod ws;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::catalog::Catalog;
use fleet::Fleet;
use token::{InstanceId, SessionKeys, TokenError};

/// The hangar's settings (from jetpack.conf's `uplink.*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Between pings to each docked instance; instances expect one within 10 s.
    pub ping: Duration,
    /// Largest transport accepted from an instance.
    pub max_transport: u32,
    /// Auths per second per source address, and the burst allowed.
    pub auth_rate: f64,
    pub auth_burst: f64,
    /// How long a session token from `/auth` may be used to dock.
    pub token_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ping: Duration::from_secs(5),
            max_transport: 16 << 20,
            auth_rate: 50.0,
            auth_burst: 100.0,
            token_ttl: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("too many auth requests from {0}")]
    RateLimited(IpAddr),
    #[error("the key is not the token of any uplink")]
    UnknownKey,
    #[error("auth body is not {{\"id\": ..., \"key\": ...}}: {0}")]
    Malformed(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the uplink tokens cannot be read: {0}")]
    Store(String),
}

/// Per-source-address token buckets for `/auth`.
struct AuthLimiter {
    buckets: crate::throttle::TokenBuckets<IpAddr>,
}

impl AuthLimiter {
    fn new() -> AuthLimiter {
        AuthLimiter {
            // Beyond this many addresses, those whose buckets are full
            // again are forgotten.
            buckets: crate::throttle::TokenBuckets::new(100_000),
        }
    }

    /// Takes one token for `ip`; Err(first refusal of this flood?).
    fn take(&self, ip: IpAddr, rate: f64, burst: f64) -> Result<(), bool> {
        self.buckets
            .take(ip, rate, burst)
            .map_err(|refused| refused.first)
    }
}

/// The uplinks' tokens, re-read at most once a second (an uplink made or
/// deleted through the API is honoured within a second).
struct TokenCache {
    at: Option<Instant>,
    tokens: Vec<(String, String)>,
}

pub struct Hangar {
    pub fleet: Arc<Fleet>,
    pub settings: Settings,
    catalog: Arc<Catalog>,
    keys: SessionKeys,
    limiter: AuthLimiter,
    tokens: Mutex<TokenCache>,
}

impl Hangar {
    pub fn new(
        catalog: Arc<Catalog>,
        fleet: Arc<Fleet>,
        settings: Settings,
    ) -> Result<Hangar, TokenError> {
        Ok(Hangar {
            fleet,
            settings,
            catalog,
            keys: SessionKeys::generate()?,
            limiter: AuthLimiter::new(),
            tokens: Mutex::new(TokenCache {
                at: None,
                tokens: Vec::new(),
            }),
        })
    }

    /// The uplink whose token is `key`, compared in constant time.
    fn uplink_for_key(&self, key: &str) -> Result<String, AuthError> {
        let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if cache
            .at
            .is_none_or(|at| at.elapsed() > Duration::from_secs(1))
        {
            let q = crate::store::catalog::ListQuery::default();
            let rows = self
                .catalog
                .uplinks(&q)
                .map_err(|e| AuthError::Store(e.to_string()))?;
            cache.tokens = rows.into_iter().map(|u| (u.id.into(), u.token)).collect();
            cache.at = Some(Instant::now());
        }
        let mut found = None;
        for (id, token) in &cache.tokens {
            if bool::from(token.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(id.clone());
            }
        }
        found.ok_or(AuthError::UnknownKey)
    }

    /// `POST /auth`: checks the body and answers the session token.
    /// Blocking (may read the store).
    pub fn authenticate(&self, from: IpAddr, body: &[u8]) -> Result<String, AuthError> {
        if let Err(first) =
            self.limiter
                .take(from, self.settings.auth_rate, self.settings.auth_burst)
        {
            if first {
                tracing::warn!("hangar: auth flood from {from}: refusing (uplink.authrate)");
            }
            return Err(AuthError::RateLimited(from));
        }
        #[derive(serde::Deserialize)]
        struct Body {
            id: String,
            key: String,
        }
        let body: Body =
            serde_json::from_slice(body).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let id = InstanceId::new(&body.id)?;
        let uplink = self.uplink_for_key(&body.key)?;
        self.fleet.connecting(&id, &uplink);
        Ok(self
            .keys
            .issue(&id, unix_now(), self.settings.token_ttl.as_secs()))
    }

    /// The instance a dock's bearer token belongs to.
    pub fn check_dock(&self, token: &str) -> Result<InstanceId, TokenError> {
        self.keys.verify(token, unix_now())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_refuses_a_flood_and_recovers() {
        let l = AuthLimiter::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..5 {
            assert!(l.take(ip, 10.0, 5.0).is_ok());
        }
        assert_eq!(l.take(ip, 10.0, 5.0), Err(true));
        assert_eq!(l.take(ip, 10.0, 5.0), Err(false));
        assert!(
            l.take(other, 10.0, 5.0).is_ok(),
            "other addresses are not affected"
        );
        std::thread::sleep(Duration::from_millis(150));
        assert!(l.take(ip, 10.0, 5.0).is_ok());
    }

    #[test]
    fn auth_checks_the_key_and_binds_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        let made = catalog
            .ensure_uplink(crate::catalog::DEFAULT_UPLINK, "http://h:9090")
            .unwrap()
            .unwrap();
        let fleet = Arc::new(Fleet::load(catalog.clone(), fleet::Limits::default()).unwrap());
        let hangar = Hangar::new(catalog, fleet.clone(), Settings::default()).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let body = format!(r#"{{ "id": "ABCDEF01", "key": "{}"}}"#, made.token);
        let token = hangar.authenticate(ip, body.as_bytes()).unwrap();
        assert_eq!(hangar.check_dock(&token).unwrap().as_str(), "abcdef01");
        assert_eq!(
            fleet
                .with(&InstanceId::new("abcdef01").unwrap(), |l| l.status)
                .unwrap(),
            fleet::Status::Connecting
        );
        assert_eq!(
            hangar.authenticate(ip, br#"{"id": "abcdef01", "key": "nope"}"#),
            Err(AuthError::UnknownKey)
        );
        assert!(matches!(
            hangar.authenticate(ip, b"{\"id\": 1}"),
            Err(AuthError::Malformed(_))
        ));
        let bad_id = format!(r#"{{"id": "../../etc", "key": "{}"}}"#, made.token);
        assert!(matches!(
            hangar.authenticate(ip, bad_id.as_bytes()),
            Err(AuthError::Token(TokenError::BadInstanceId(_)))
        ));
        assert!(hangar.check_dock("forged.1.AAAA").is_err());
    }
}
