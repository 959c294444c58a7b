//! What `jetpack serve` reads (`ServerConfig`): the API's listener and
//! files (`server.*`), the hangar's (`uplink.*`: its port, TLS, the URL
//! instances reach it at, what it keeps per instance), and the bounds on
//! both listeners and on logins (limits.rs holds their types).

use std::path::PathBuf;
use std::time::Duration;

use super::limits::{ConnLimits, LoginLimits};
use super::values::Values;
use super::ConfigError;

/// What `jetpack serve` reads; its command-line flags override these.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub listen: std::net::IpAddr,
    pub port: u16,
    pub tls: bool,
    pub auth: bool,
    pub dir: PathBuf,
    pub htpasswd: PathBuf,
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub max_body: usize,
    pub max_upload: u64,
    pub log_lines: usize,
    pub verbose: bool,
    pub uplink_port: u16,
    pub uplink_tls: bool,
    /// Empty: derived from the host name, uplink.tls and uplink.port.
    pub uplink_url: String,
    pub uplink_certfile: PathBuf,
    pub uplink_keyfile: PathBuf,
    pub uplink_max_transport: u32,
    pub uplink_log_bytes: usize,
    pub uplink_ping: u64,
    pub uplink_auth_rate: u64,
    pub uplink_auth_burst: u64,
    pub uplink_stats_history: usize,
    /// The API's and the hangar's connection bounds.
    pub api_limits: ConnLimits,
    pub hangar_limits: ConnLimits,
    pub login: LoginLimits,
}

pub(super) fn read(v: &Values) -> Result<ServerConfig, ConfigError> {
    let server = ServerConfig {
        name: v.str("server.name").to_string(),
        listen: v
            .str("server.listen")
            .parse()
            .map_err(|_| v.bad("server.listen", "expected an IP address".into()))?,
        port: v.port("server.port")?,
        tls: v.switch("server.tls")?,
        auth: match v.str("server.auth") {
            "basic" => true,
            "none" => false,
            _ => return Err(v.bad("server.auth", "expected basic or none".into())),
        },
        dir: v.absolute("server.dir")?,
        htpasswd: v.absolute("server.htpasswd")?,
        certfile: v.absolute("server.certfile")?,
        keyfile: v.absolute("server.keyfile")?,
        max_body: v.number("server.maxbody")? as usize,
        max_upload: v.number("server.maxupload")?,
        log_lines: v.number("server.loglines")? as usize,
        verbose: v.switch("server.verboselogging")?,
        uplink_port: v.port("uplink.port")?,
        uplink_tls: v.switch("uplink.tls")?,
        uplink_url: v.str("uplink.url").to_string(),
        uplink_certfile: v.absolute("uplink.certfile")?,
        uplink_keyfile: v.absolute("uplink.keyfile")?,
        uplink_max_transport: u32::try_from(v.number("uplink.maxtransport")?)
            .map_err(|_| v.bad("uplink.maxtransport", "at most 4294967295".into()))?,
        uplink_log_bytes: v.number("uplink.logbytes")? as usize,
        uplink_ping: match v.number("uplink.ping")? {
            n @ 1..=9 => n,
            _ => {
                return Err(v.bad(
                    "uplink.ping",
                    "1..=9: instances expect a ping within 10 s".into(),
                ))
            }
        },
        uplink_auth_rate: match v.number("uplink.authrate")? {
            0 => return Err(v.bad("uplink.authrate", "at least 1".into())),
            n => n,
        },
        uplink_auth_burst: v.number("uplink.authburst")?.max(1),
        uplink_stats_history: v.number("uplink.statshistory")? as usize,
        api_limits: ConnLimits {
            handshake: Duration::from_secs(v.positive("server.timeout.handshake")?),
            head: Duration::from_secs(v.positive("server.timeout.head")?),
            idle: Duration::from_secs(v.positive("server.timeout.idle")?),
            body_stall: Duration::from_secs(v.positive("server.timeout.body")?),
            min_body_rate: v.number("server.minbodyrate")?,
            max_conns: v.auto("server.maxconns")?,
            max_conns_per_ip: v.positive("server.maxconnsperip")? as usize,
        },
        hangar_limits: ConnLimits {
            max_conns: v.auto("uplink.maxconns")?,
            max_conns_per_ip: v.positive("uplink.maxconnsperip")? as usize,
            ..ConnLimits::default()
        },
        login: LoginLimits {
            fail_rate: v.positive("server.login.failrate")? as f64,
            fail_burst: v.positive("server.login.failburst")? as f64,
            workers: v.auto("server.login.workers")?,
        },
    };
    let url = &server.uplink_url;
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return Err(v.bad(
            "uplink.url",
            "expected http://HOST:PORT or https://HOST:PORT".into(),
        ));
    }
    Ok(server)
}
