//! Owns the API's users: the htpasswd file (bcrypt, as `htpasswd -B`
//! writes it), the check of a user and password against it, and the cache
//! of verified credentials. bcrypt costs milliseconds by design, so a
//! verified credential is remembered for a short while, keyed by a
//! SHA-256 of it (never the password itself); the memory is dropped
//! whenever the file changes.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a user:hash line")]
    Syntax { path: String, line: usize },
    #[error("invalid user name {0:?}: 1-64 characters, no ':', spaces or control characters")]
    BadName(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error(
        "the password is {0} bytes long: bcrypt uses only the first {MAX_PASSWORD_BYTES} bytes, \
         so longer passwords are refused (anything with the same first {MAX_PASSWORD_BYTES} \
         bytes would log in)"
    )]
    PasswordTooLong(usize),
}

/// bcrypt reads at most this many bytes of a password and silently ignores
/// the rest, so a longer one would be weaker than it looks: refused when
/// set, and never verified (a login cannot match by its prefix).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// How long a verified credential is trusted without bcrypt.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// How often the file's identity is looked at for changes.
const RECHECK: Duration = Duration::from_secs(1);
/// bcrypt cost of hashes we write (htpasswd -B uses 5; higher is safer and
/// the cache keeps it off the request path).
const COST: u32 = 10;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UsersError + '_ {
    move |source| UsersError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn check_user_name(name: &str) -> Result<(), UsersError> {
    if name.is_empty()
        || name.len() > 64
        || name.contains(':')
        || !name.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(UsersError::BadName(name.to_string()));
    }
    Ok(())
}

/// The lines of an htpasswd file, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Htpasswd {
    entries: Vec<(String, String)>,
}

impl Htpasswd {
    pub fn parse(text: &str, path: &Path) -> Result<Htpasswd, UsersError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or(UsersError::Syntax {
                path: path.display().to_string(),
                line: i + 1,
            })?;
            entries.push((user.to_string(), hash.to_string()));
        }
        Ok(Htpasswd { entries })
    }

    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Htpasswd, UsersError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Htpasswd::default()),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Writes the file whole: staged beside it, 0600, synced, renamed.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let mut text = String::new();
        for (user, hash) in &self.entries {
            text.push_str(&format!("{user}:{hash}\n"));
        }
        write_private(path, text.as_bytes())
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(u, _)| u.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a user or changes its password.
    pub fn set(&mut self, user: &str, password: &str) -> Result<(), UsersError> {
        check_user_name(user)?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(UsersError::PasswordTooLong(password.len()));
        }
        let hash = bcrypt::hash_with_result(password, COST)
            .map_err(|e| UsersError::Hash(e.to_string()))?
            .format_for_version(bcrypt::Version::TwoY);
        match self.entries.iter_mut().find(|(u, _)| u == user) {
            Some(entry) => entry.1 = hash,
            None => self.entries.push((user.to_string(), hash)),
        }
        Ok(())
    }

    pub fn remove(&mut self, user: &str) -> Result<(), UsersError> {
        let before = self.entries.len();
        self.entries.retain(|(u, _)| u != user);
        if self.entries.len() == before {
            return Err(UsersError::NoSuchUser(user.to_string()));
        }
        Ok(())
    }

    /// bcrypt check; unknown users, non-bcrypt hashes and passwords
    /// longer than bcrypt reads fail.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            // Before bcrypt, which would compare only the first 72 bytes;
            // the same answer and time for known and unknown users.
            return false;
        }
        let Some((_, hash)) = self.entries.iter().find(|(u, _)| u == user) else {
            // Spend the same time as a real check, so that response times
            // do not tell which users exist.
            let _ = bcrypt::verify(password, dummy_hash());
            return false;
        };
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

/// A bcrypt hash of nothing useful, at our cost, for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("", COST).unwrap_or_default())
}

/// Writes `bytes` to `path` with mode 0600 through a staged file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), UsersError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let staged = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&staged, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&staged);
    }
    result.map_err(io(path))
}

/// What identifies a version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = fs::metadata(path).ok()?;
    Some(FileStamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

struct Loaded {
    file: Htpasswd,
    stamp: Option<FileStamp>,
    checked: Instant,
    /// sha256(user NUL password) -> when it was verified.
    verified: HashMap<[u8; 32], Instant>,
}

/// The users of a running server.
pub struct Users {
    path: PathBuf,
    state: RwLock<Loaded>,
}

impl Users {
    pub fn open(path: &Path) -> Result<Users, UsersError> {
        let file = Htpasswd::load(path)?;
        // Made now rather than at the first unknown user, whose refusal
        // would otherwise take two bcrypts and so stand out.
        let _ = dummy_hash();
        Ok(Users {
            path: path.to_path_buf(),
            state: RwLock::new(Loaded {
                file,
                stamp: stamp(path),
                checked: Instant::now(),
                verified: HashMap::new(),
            }),
        })
    }

    pub fn count(&self) -> usize {
        self.state.read().map(|s| s.file.len()).unwrap_or(0)
    }

    /// Re-reads the file and forgets every cached credential (SIGHUP).
    pub fn reload(&self) -> Result<usize, UsersError> {
        let file = Htpasswd::load(&self.path)?;
        let n = file.len();
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        s.file = file;
        s.stamp = stamp(&self.path);
        s.checked = Instant::now();
        s.verified.clear();
        Ok(n)
    }

    fn reload_if_changed(&self) {
        let due = self
            .state
            .read()
            .map(|s| s.checked.elapsed() >= RECHECK)
            .unwrap_or(true);
        if !due {
            return;
        }
        let now = stamp(&self.path);
        let changed = {
            let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
            s.checked = Instant::now();
            s.stamp != now
        };
        if changed {
            match self.reload() {
                Ok(n) => tracing::info!("{} changed: {n} user(s)", self.path.display()),
                Err(e) => tracing::error!("reloading users: {e}"),
            }
        }
    }

    fn cache_key(user: &str, password: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }

    /// Whether this credential was verified recently (cheap: no bcrypt).
    /// A credential in use stays cached: one older than half the TTL is
    /// renewed, so that a client polling the API never falls back to the
    /// bcrypt pool, which may be busy (or its name throttled) while someone
    /// floods the server with bad passwords. Changing the file still drops
    /// every cached credential at once.
    pub fn cached(&self, user: &str, password: &str) -> bool {
        self.reload_if_changed();
        let key = Self::cache_key(user, password);
        let age = {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            match s.verified.get_key_value(&key) {
                Some((cached, at)) if bool::from(cached.ct_eq(&key)) => at.elapsed(),
                _ => return false,
            }
        };
        if age >= CACHE_TTL {
            return false;
        }
        if age >= CACHE_TTL / 2 {
            let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = s.verified.get_mut(&key) {
                *at = Instant::now();
            }
        }
        true
    }

    /// A digest of `user`'s line in the file as it is now (None when the
    /// user is gone): a browser session made with one digest ends when it
    /// changes, i.e. when the user is removed or the password changed.
    pub fn fingerprint(&self, user: &str) -> Option<[u8; 32]> {
        self.reload_if_changed();
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        let (_, hash) = s.file.entries.iter().find(|(u, _)| u == user)?;
        Some(
            Sha256::new()
                .chain_update(user.as_bytes())
                .chain_update([0u8])
                .chain_update(hash.as_bytes())
                .finalize()
                .into(),
        )
    }

    /// Whether `user` with `password` may in. Blocking: may run bcrypt.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        if self.cached(user, password) {
            return true;
        }
        let key = Self::cache_key(user, password);
        let file = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .clone();
        if !file.verify(user, password) {
            return false;
        }
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        // The file may have changed while bcrypt ran; cache only against
        // the version that was checked.
        if s.file == file {
            s.verified.retain(|_, at| at.elapsed() < CACHE_TTL);
            s.verified.insert(key, Instant::now());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_verify_remove_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let mut h = Htpasswd::load(&path).unwrap();
        assert!(h.is_empty());
        h.set("admin", "s3cret").unwrap();
        h.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("admin:$2y$10$"), "{text}");
        let users = Users::open(&path).unwrap();
        assert!(users.verify("admin", "s3cret"));
        assert!(users.verify("admin", "s3cret"), "from the cache");
        assert!(!users.verify("admin", "wrong"));
        assert!(!users.verify("nobody", "s3cret"));
        let mut h = Htpasswd::load(&path).unwrap();
        h.remove("admin").unwrap();
        assert!(matches!(h.remove("admin"), Err(UsersError::NoSuchUser(_))));
        h.save(&path).unwrap();
        users.reload().unwrap();
        assert!(
            !users.verify("admin", "s3cret"),
            "the cache went with the user"
        );
    }

    #[test]
    fn bad_names_and_lines_are_refused() {
        let mut h = Htpasswd::default();
        for bad in ["", "a:b", "with space", "tab\t"] {
            assert!(h.set(bad, "x").is_err(), "{bad:?}");
        }
        assert!(Htpasswd::parse("nocolon\n", Path::new("f")).is_err());
    }

    #[test]
    fn passwords_longer_than_bcrypt_reads_are_refused() {
        let mut h = Htpasswd::default();
        let err = h.set("u", &"p".repeat(88)).unwrap_err();
        assert!(matches!(err, UsersError::PasswordTooLong(88)), "{err}");
        assert!(err.to_string().contains("only the first 72 bytes"), "{err}");
        assert!(h.is_empty(), "nothing set");
        let p72 = "q".repeat(72);
        h.set("u", &p72).unwrap();
        assert!(h.verify("u", &p72));
        assert!(
            !h.verify("u", &format!("{p72}x")),
            "a login never matches by its first 72 bytes"
        );
    }

    #[test]
    fn the_dummy_hash_is_a_valid_bcrypt_hash() {
        assert!(bcrypt::verify("x", dummy_hash()).is_ok());
    }
}
