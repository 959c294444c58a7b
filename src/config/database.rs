//! `store.*`: which database holds the fleet's tables (the server's
//! documents, images, jobs, instances, builders, boot files, hosts).
//! `sqlite` keeps them in the host's own state database; `postgres` puts
//! them in one PostgreSQL that several jetpack hosts share. Bases, pods
//! and volumes stay in each host's SQLite either way. `host.*`: how this
//! server names itself among them and how often it says it is alive.

use std::path::PathBuf;
use std::time::Duration;

use super::values::Values;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub enum StoreDriver {
    Sqlite,
    Postgres(PostgresConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// `postgres://USER@HOST:PORT/DB`, never with a password in it.
    pub url: String,
    /// A 0600 file holding the password (else `PGPASSWORD`, else none).
    pub password_file: Option<PathBuf>,
    pub tls: bool,
    pub ca: Option<PathBuf>,
    pub pool: usize,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Empty: the machine's host name.
    pub name: String,
    pub heartbeat: Duration,
    pub down_after: Duration,
}

pub(super) fn read_host(v: &Values) -> Result<HostConfig, ConfigError> {
    let name = v.str("host.name").to_string();
    if !name.is_empty()
        && (name.len() > 253
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')))
    {
        return Err(v.bad(
            "host.name",
            "expected letters, digits, '-', '.' and '_' (at most 253)".into(),
        ));
    }
    let heartbeat = Duration::from_secs(v.positive("host.heartbeat")?);
    let down_after = Duration::from_secs(v.positive("host.down")?);
    if down_after < heartbeat * 2 {
        return Err(v.bad(
            "host.down",
            "at least two heartbeats (host.heartbeat)".into(),
        ));
    }
    Ok(HostConfig {
        name,
        heartbeat,
        down_after,
    })
}

pub(super) fn read(v: &Values) -> Result<StoreDriver, ConfigError> {
    match v.str("store.driver") {
        "sqlite" | "" => Ok(StoreDriver::Sqlite),
        "postgres" => postgres(v).map(StoreDriver::Postgres),
        _ => Err(v.bad("store.driver", "expected sqlite or postgres".into())),
    }
}

fn postgres(v: &Values) -> Result<PostgresConfig, ConfigError> {
    let url = v.str("store.url").to_string();
    // Never `v.bad` on the URL: its error would print the value, and a
    // URL with a password in it must not reach a terminal or a log.
    let refused = |why: &str| v.bad_unshown("store.url", why.into());
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| refused("expected postgres://USER@HOST:PORT/DATABASE"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            return Err(refused(
                "a password in the URL would show wherever the URL does: put it in store.password.file (mode 0600) or PGPASSWORD",
            ));
        }
    }
    if authority.is_empty() || url.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(refused("expected postgres://USER@HOST:PORT/DATABASE"));
    }
    let path = |key: &str| -> Result<Option<PathBuf>, ConfigError> {
        match v.str(key) {
            "" => Ok(None),
            _ => v.absolute(key).map(Some),
        }
    };
    Ok(PostgresConfig {
        url,
        password_file: path("store.password.file")?,
        tls: v.switch("store.tls")?,
        ca: path("store.tls.ca")?,
        pool: v.positive("store.pool")? as usize,
        timeout: Duration::from_secs(v.positive("store.timeout")?),
    })
}

#[cfg(test)]
mod tests {
    use super::super::load_text;
    use super::*;

    #[test]
    fn sqlite_is_the_default_and_postgres_takes_its_keys() {
        let c = load_text("", &[]).unwrap();
        assert_eq!(c.store, StoreDriver::Sqlite);
        let c = load_text(
            "store.driver = postgres\nstore.url = postgres://jet@db.example:5432/fleet\nstore.password.file = /etc/jetpack/db.password\nstore.tls = on\n",
            &[],
        )
        .unwrap();
        let StoreDriver::Postgres(pg) = c.store else {
            panic!("postgres expected")
        };
        assert_eq!(pg.url, "postgres://jet@db.example:5432/fleet");
        assert_eq!(
            pg.password_file.as_deref(),
            Some(std::path::Path::new("/etc/jetpack/db.password"))
        );
        assert!(pg.tls);
        assert_eq!(pg.pool, 16);
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_being_shown() {
        let e = load_text(
            "store.driver = postgres\nstore.url = postgres://jet:s3cret@db/fleet\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("store.password.file"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        for bad in ["mysql://db/x", "postgres://", "postgres://db /x"] {
            let text = format!("store.driver = postgres\nstore.url = {bad}\n");
            assert!(load_text(&text, &[]).is_err(), "{bad}");
        }
        assert!(load_text("store.driver = oracle\n", &[]).is_err());
    }
}
