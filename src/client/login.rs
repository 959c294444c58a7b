//! Where a client connects and as whom: the login file written by `jetpack
//! login` (`$XDG_CONFIG_HOME/jetpack/login.json`, else
//! `$HOME/.config/jetpack/login.json`, mode 0600 in a 0700 directory,
//! staged then renamed), and how command-line flags override it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 8080;

/// A server and the credentials for it; also what a `Client` is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Plain HTTP
    #[serde(default)]
    pub notls: bool,
    /// Do not verify the server's certificate
    #[serde(default)]
    pub insecure: bool,
    /// Trust this PEM file (the server's own certificate) instead of the webpki roots
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
}

impl Default for Login {
    fn default() -> Self {
        Login {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            username: None,
            password: None,
            notls: false,
            insecure: false,
            cacert: None,
        }
    }
}

/// What the command line (and the environment) said; `None`/`false` is
/// "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub notls: bool,
    pub insecure: bool,
    pub cacert: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep login.json")]
    NoHome,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a jetpack login file ({source}); run `jetpack login` again")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("login to {url} failed: {message}")]
    Refused { url: String, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LoginError + '_ {
    move |source| LoginError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The login file's path.
pub fn path() -> Result<PathBuf, LoginError> {
    let absolute_var = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    // XDG says a relative XDG_CONFIG_HOME is invalid and to be ignored.
    let dir = match absolute_var("XDG_CONFIG_HOME") {
        Some(d) => d,
        None => absolute_var("HOME")
            .ok_or(LoginError::NoHome)?
            .join(".config"),
    };
    Ok(dir.join("jetpack").join("login.json"))
}

/// The stored login, if there is one.
pub fn load(path: &Path) -> Result<Option<Login>, LoginError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| LoginError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `login` to `path`: the directory made 0700, the file written
/// 0600 under a temporary name, synced, then renamed over the old one, so
/// that a reader never sees half a file and the password is never readable
/// by others, not even for a moment.
pub fn save(path: &Path, login: &Login) -> Result<(), LoginError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = path.parent().ok_or_else(|| LoginError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("no parent directory"),
    })?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))?;
    // An existing directory keeps whatever mode it had; this one is ours.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
    let mut text = serde_json::to_string_pretty(login).map_err(|e| LoginError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    let stage = dir.join(format!(".login.json.{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&stage)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&stage, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&stage);
        return Err(io_error(path)(e));
    }
    Ok(())
}

impl Login {
    /// The login to use: the flags over the stored login over the defaults.
    /// A stored login (its credentials and TLS choices) applies only to its
    /// own host: `--host other` starts from the defaults, so that a stored
    /// password is never sent to a server it was not given for.
    pub fn resolve(flags: &Overrides, stored: Option<Login>) -> Login {
        let base = match (stored, &flags.host) {
            (Some(s), Some(h)) if *h == s.host => s,
            (Some(s), None) => s,
            _ => Login::default(),
        };
        Login {
            host: flags.host.clone().unwrap_or(base.host),
            port: flags.port.unwrap_or(base.port),
            username: flags.username.clone().or(base.username),
            password: flags.password.clone().or(base.password),
            notls: flags.notls || base.notls,
            insecure: flags.insecure || base.insecure,
            cacert: flags
                .cacert
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                .or(base.cacert),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Login {
        Login {
            host: "a.example".into(),
            port: 8443,
            username: Some("admin".into()),
            password: Some("pw".into()),
            notls: false,
            insecure: true,
            cacert: None,
        }
    }

    #[test]
    fn flags_override_the_stored_login() {
        let flags = Overrides {
            username: Some("ops".into()),
            ..Default::default()
        };
        let l = Login::resolve(&flags, Some(stored()));
        assert_eq!((l.host.as_str(), l.port), ("a.example", 8443));
        assert_eq!(l.username.as_deref(), Some("ops"));
        assert_eq!(l.password.as_deref(), Some("pw"));
        assert!(l.insecure);
    }

    #[test]
    fn another_host_does_not_get_the_stored_password() {
        let flags = Overrides {
            host: Some("b.example".into()),
            ..Default::default()
        };
        let l = Login::resolve(&flags, Some(stored()));
        assert_eq!(l.host, "b.example");
        assert_eq!(l.port, DEFAULT_PORT);
        assert_eq!(l.password, None);
        assert!(!l.insecure && !l.notls);
    }

    #[test]
    fn defaults_without_anything() {
        assert_eq!(
            Login::resolve(&Overrides::default(), None),
            Login::default()
        );
    }

    #[test]
    fn saved_files_are_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("jetpack-login-test-{}", std::process::id()));
        let path = dir.join("jetpack").join("login.json");
        save(&path, &stored()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(load(&path).unwrap(), Some(stored()));
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(load(&path), Err(LoginError::Parse { .. })));
        assert_eq!(load(&dir.join("none.json")).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
