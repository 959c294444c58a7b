//! Browser sessions: what a login through the web console gives instead of
//! HTTP Basic, which browsers cache and cannot log out of. A session is a
//! random 256-bit id (the cookie) that the server maps to its user, its
//! CSRF token and its expiry; nothing in the cookie means anything by
//! itself. The map is keyed by a SHA-256 of the id, so a lookup compares
//! digests, never the secret. A session ends at logout, after `IDLE`
//! without use, at `MAX_AGE`, and when its user's line in the htpasswd file
//! changes (the user removed, the password changed).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::users::Users;

/// The longest a session lives, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(3600);
/// Sessions held at once; the oldest goes first beyond it. Only a correct
/// password makes one, so this bounds honest use.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no random numbers: {0}")]
    Random(String),
}

/// What a request with a good session cookie acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user: String,
    /// The token mutating requests must repeat in a header.
    pub csrf: String,
    /// When the session ends at the latest.
    pub expires: SystemTime,
}

impl SessionUser {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        self.csrf.len() == token.len() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A session just made: the cookie's value and what it acts as.
#[derive(Debug)]
pub struct Opened {
    pub id: String,
    pub user: SessionUser,
}

struct Session {
    user: SessionUser,
    fingerprint: [u8; 32],
    created: Instant,
    used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex(bytes: usize) -> Result<String, SessionError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// A session for `user`, whose password was just verified.
    pub fn open(&self, users: &Users, user: &str) -> Result<Option<Opened>, SessionError> {
        let Some(fingerprint) = users.fingerprint(user) else {
            return Ok(None);
        };
        let id = random_hex(32)?;
        let session_user = SessionUser {
            user: user.to_string(),
            csrf: random_hex(32)?,
            expires: SystemTime::now() + MAX_AGE,
        };
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| live(s, now));
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            key(&id),
            Session {
                user: session_user.clone(),
                fingerprint,
                created: now,
                used: now,
            },
        );
        Ok(Some(Opened {
            id,
            user: session_user,
        }))
    }

    /// The session of cookie value `id`, if it is still good; a use makes
    /// it live `IDLE` longer.
    pub fn check(&self, users: &Users, id: &str) -> Option<SessionUser> {
        let k = key(id);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let session = map.get_mut(&k)?;
        let same_user = users
            .fingerprint(&session.user.user)
            .is_some_and(|f| bool::from(f.ct_eq(&session.fingerprint)));
        if !live(session, now) || !same_user {
            map.remove(&k);
            return None;
        }
        session.used = now;
        Some(session.user.clone())
    }

    /// Ends the session of cookie value `id` (logout); whether there was one.
    pub fn close(&self, id: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(id))
            .is_some()
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.created) < MAX_AGE && now.duration_since(s.used) < IDLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::users::Htpasswd;

    fn users(dir: &std::path::Path, who: &[(&str, &str)]) -> std::path::PathBuf {
        let path = dir.join("htpasswd");
        let mut h = Htpasswd::default();
        for (u, p) in who {
            h.set(u, p).unwrap();
        }
        h.save(&path).unwrap();
        path
    }

    #[test]
    fn a_session_is_its_cookie_and_ends_at_logout() {
        let dir = tempfile::tempdir().unwrap();
        let u = Users::open(&users(dir.path(), &[("ann", "pw")])).unwrap();
        let sessions = Sessions::default();
        assert!(sessions.open(&u, "nobody").unwrap().is_none());
        let a = sessions.open(&u, "ann").unwrap().unwrap();
        let b = sessions.open(&u, "ann").unwrap().unwrap();
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, b.id);
        assert_ne!(a.user.csrf, b.user.csrf);
        assert_eq!(sessions.check(&u, &a.id), Some(a.user.clone()));
        assert!(sessions.check(&u, "0".repeat(64).as_str()).is_none());
        assert!(a.user.csrf_matches(&a.user.csrf.clone()));
        assert!(!a.user.csrf_matches(&b.user.csrf));
        assert!(!a.user.csrf_matches(""));
        assert!(sessions.close(&a.id));
        assert!(!sessions.close(&a.id));
        assert!(sessions.check(&u, &a.id).is_none());
        assert!(sessions.check(&u, &b.id).is_some(), "the other one lives");
    }

    #[test]
    fn sessions_end_when_the_user_is_removed_or_the_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = users(dir.path(), &[("ann", "pw"), ("bob", "pw")]);
        let u = Users::open(&path).unwrap();
        let sessions = Sessions::default();
        let ann = sessions.open(&u, "ann").unwrap().unwrap();
        let bob = sessions.open(&u, "bob").unwrap().unwrap();
        let mut h = Htpasswd::load(&path).unwrap();
        h.remove("ann").unwrap();
        h.set("bob", "new").unwrap();
        h.save(&path).unwrap();
        u.reload().unwrap();
        assert!(sessions.check(&u, &ann.id).is_none(), "ann was removed");
        assert!(
            sessions.check(&u, &bob.id).is_none(),
            "bob's password changed"
        );
        assert!(sessions.is_empty());
    }

    #[test]
    fn idle_and_old_sessions_are_over() {
        let now = Instant::now();
        let Some(past) = now.checked_sub(IDLE + Duration::from_secs(1)) else {
            return; // the clock started too recently to build the case
        };
        let session = |created, used| Session {
            user: SessionUser {
                user: "u".into(),
                csrf: String::new(),
                expires: SystemTime::now(),
            },
            fingerprint: [0; 32],
            created,
            used,
        };
        assert!(live(&session(now, now), now));
        assert!(!live(&session(past, past), now), "idle");
        if let Some(old) = now.checked_sub(MAX_AGE + Duration::from_secs(1)) {
            assert!(!live(&session(old, now), now), "too old");
        }
    }
}
