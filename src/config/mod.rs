//! Configuration: jetpack.conf in Jetpack's format (`key = value`, `#`
//! comments, `${key}` expansion, later keys win), `-o key=value` overrides,
//! and the typed view of it that the rest of jetpack reads.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod limits;
pub use limits::{ConnLimits, LoginLimits};

pub const DEFAULT_PATH: &str = "/usr/local/etc/jetpack.conf";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {why}")]
    Syntax {
        origin: String,
        line: usize,
        why: String,
    },
    #[error("{origin}: {key} = {value:?}: {why}")]
    Value {
        origin: String,
        key: String,
        value: String,
        why: String,
    },
    #[error("unknown configuration key {0:?}")]
    UnknownKey(String),
}

/// Where a value came from, so that an error can name the file and line.
#[derive(Debug, Clone)]
enum Origin {
    Default,
    File(PathBuf, usize),
    Override,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p, line) => write!(f, "{}:{}", p.display(), line),
            Origin::Override => f.write_str("-o"),
        }
    }
}

/// Every key jetpack knows, with its default and what it means; the sample
/// file and `jetpack config` are made from this table.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "root.zfs",
        "zroot/jetpack",
        "root dataset (zfs and zfs-cli drivers)",
    ),
    (
        "root.zfs.mountpoint",
        "/var/jetpack",
        "where the root dataset (or the dir driver's tree) is mounted",
    ),
    (
        "datasets.driver",
        "auto",
        "zfs | zfs-cli | dir | auto (zfs when the pool of root.zfs exists, else dir)",
    ),
    (
        "jail.driver",
        "auto",
        "jail (FreeBSD) | linux | auto (by platform)",
    ),
    (
        "jail.interface",
        DEFAULT_INTERFACE,
        "interface that carries pod addresses: lo1 on FreeBSD, a bridge on Linux",
    ),
    (
        "jail.ip4.range",
        "172.23.0.0/24",
        "pod address range; the first address is the host's (the MDS listens there)",
    ),
    (
        "jail.namePrefix",
        "jetpack-",
        "prefix of jail names; the pod's uuid follows",
    ),
    ("jail.securelevel", "2", "securelevel of FreeBSD jails"),
    ("jail.devfs.ruleset", "4", "devfs ruleset of FreeBSD jails"),
    (
        "jail.stop.timeout",
        "10",
        "seconds between SIGTERM and SIGKILL when a pod is stopped",
    ),
    ("mds.port", "1104", "metadata service port"),
    ("mds.user", "_jetpack", "user the metadata service runs as"),
    (
        "mds.signing-key",
        "",
        "hex key (>= 32 bytes) the MDS signs pod data with",
    ),
    (
        "mds.token-key",
        "",
        "hex key (>= 32 bytes) pod tokens are derived with",
    ),
    (
        "data.dir",
        "${root.zfs.mountpoint}",
        "state database and blobs",
    ),
    (
        "conf.dir",
        "/usr/local/etc",
        "the folder of jetpack.conf (set from the file's location)",
    ),
    (
        "server.name",
        "jetpack",
        "server name shown by /v1/info (--name)",
    ),
    (
        "server.listen",
        "0.0.0.0",
        "address the API and the hangar listen on",
    ),
    ("server.port", "8080", "API port (--serverport)"),
    (
        "server.tls",
        "on",
        "TLS on the API: on | off (--noservertls)",
    ),
    (
        "server.auth",
        "basic",
        "API auth: basic | none (--serverauth)",
    ),
    (
        "server.dir",
        "${conf.dir}/jetpack",
        "htpasswd, cert.pem, key.pem and admin.password (made on first start)",
    ),
    (
        "server.htpasswd",
        "${server.dir}/htpasswd",
        "users (htpasswd -B format)",
    ),
    (
        "server.certfile",
        "${server.dir}/cert.pem",
        "TLS certificate chain, PEM (--certfile)",
    ),
    (
        "server.keyfile",
        "${server.dir}/key.pem",
        "TLS private key, PEM (--keyfile)",
    ),
    (
        "server.maxbody",
        "1048576",
        "largest JSON or text request body, bytes (413 beyond)",
    ),
    (
        "server.maxupload",
        "17179869184",
        "largest image or base upload, bytes (413 beyond)",
    ),
    (
        "server.loglines",
        "1000",
        "recent log lines kept for /v1/log",
    ),
    (
        "server.verboselogging",
        "off",
        "debug logging: on | off (--verboselogging)",
    ),
    ("uplink.port", "9090", "hangar port (--uplinkport)"),
    (
        "uplink.tls",
        "on",
        "TLS on the hangar: on | off (--nouplinktls)",
    ),
    (
        "uplink.certfile",
        "${server.dir}/hangar-cert.pem",
        "hangar TLS certificate, PEM, RSA (IncludeOS needs AES256-SHA)",
    ),
    (
        "uplink.keyfile",
        "${server.dir}/hangar-key.pem",
        "hangar TLS private key, PEM",
    ),
    (
        "uplink.maxtransport",
        "16777216",
        "largest transport accepted from an instance, bytes (a longer one closes its dock)",
    ),
    (
        "uplink.authrate",
        "50",
        "auth requests per second allowed per source address (429 beyond)",
    ),
    (
        "uplink.authburst",
        "100",
        "auth requests one address may make at once before uplink.authrate applies",
    ),
    (
        "uplink.statshistory",
        "10",
        "STATS documents kept in memory per instance besides the latest",
    ),
    (
        "uplink.logbytes",
        "16384",
        "LOG bytes kept in memory per instance",
    ),
    (
        "uplink.ping",
        "5",
        "seconds between pings to docked instances (they expect one within 10)",
    ),
    (
        "build.concurrency",
        "2",
        "builds and builder validations running at once; the rest queue",
    ),
    (
        "build.timeout",
        "1800",
        "seconds a build may run before its pod is killed",
    ),
    (
        "build.validate.timeout",
        "60",
        "seconds a builder's NaCl validation may run",
    ),
    (
        "uplink.url",
        "",
        "URL instances reach the hangar at [default: http(s)://HOSTNAME:uplink.port]",
    ),
    (
        "server.timeout.handshake",
        "10",
        "seconds a client has for the API's TLS handshake",
    ),
    (
        "server.timeout.head",
        "10",
        "seconds a client has to send a whole request head, from its first byte",
    ),
    (
        "server.timeout.idle",
        "60",
        "seconds an API connection may wait idle between requests",
    ),
    (
        "server.timeout.body",
        "30",
        "seconds a request body may stall (no byte) before the request fails",
    ),
    (
        "server.minbodyrate",
        "1024",
        "bytes per second a request body must average once it has run server.timeout.body",
    ),
    (
        "server.maxconns",
        "auto",
        "API connections at once (auto: a quarter of the descriptors, at most 4096)",
    ),
    (
        "server.maxconnsperip",
        "64",
        "API connections at once from one source address",
    ),
    (
        "uplink.maxconns",
        "auto",
        "hangar connections at once (auto: the descriptors left after the API's and a reserve)",
    ),
    (
        "uplink.maxconnsperip",
        "1024",
        "hangar connections at once from one source address",
    ),
    (
        "server.login.failrate",
        "1",
        "failed logins per second allowed per source address and per user name (429 beyond)",
    ),
    (
        "server.login.failburst",
        "10",
        "failed logins one address or user name may make at once before the rate applies",
    ),
    (
        "server.login.workers",
        "auto",
        "bcrypt verifications at once (auto: half the cores, at least 1)",
    ),
    (
        "base.import.allow",
        "",
        "private networks (CIDR) and hosts base imports may fetch from, comma-separated",
    ),
];

#[cfg(target_os = "freebsd")]
const DEFAULT_INTERFACE: &str = "lo1";
#[cfg(not(target_os = "freebsd"))]
const DEFAULT_INTERFACE: &str = "jetpack0";

/// Keys under this prefix are extra jail(2) parameters, passed as they are.
pub const JAIL_PARAM_PREFIX: &str = "jail.param.";

/// `bob.provider.NAME = KIND LOCATION` declares a bob provider: `local DIR`,
/// `http URL-OF-INDEX` or `oci http(s)://REGISTRY/REPOSITORY`.
pub const BOB_PROVIDER_PREFIX: &str = "bob.provider.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BobProviderKind {
    Local,
    Http,
    Oci,
}

impl BobProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BobProviderKind::Local => "local",
            BobProviderKind::Http => "http",
            BobProviderKind::Oci => "oci",
        }
    }
}

/// One `bob.provider.NAME` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BobProviderConfig {
    pub name: String,
    pub kind: BobProviderKind,
    /// A directory (local) or a URL (http, oci).
    pub location: String,
}

impl BobProviderConfig {
    fn parse(name: &str, value: &str) -> Result<BobProviderConfig, String> {
        let (kind, location) = value
            .split_once(char::is_whitespace)
            .map(|(k, l)| (k, l.trim()))
            .ok_or("expected KIND LOCATION (local DIR, http URL or oci URL)")?;
        let is_url = location.starts_with("http://") || location.starts_with("https://");
        let kind = match kind {
            "local" if location.starts_with('/') => BobProviderKind::Local,
            "local" => return Err("a local provider's location is an absolute directory".into()),
            "http" | "oci" if !is_url => {
                return Err(format!("a {kind} provider's location is an http(s) URL"))
            }
            "http" => BobProviderKind::Http,
            "oci" => {
                let path = location.splitn(4, '/').nth(3).unwrap_or("");
                if path.is_empty() {
                    return Err(
                        "an oci provider's location is http(s)://REGISTRY/REPOSITORY".into(),
                    );
                }
                BobProviderKind::Oci
            }
            other => {
                return Err(format!(
                    "unknown provider kind {other:?}: local, http or oci"
                ))
            }
        };
        Ok(BobProviderConfig {
            name: name.to_string(),
            kind,
            location: location.trim_end_matches('/').to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetsDriver {
    Zfs,
    ZfsCli,
    Dir,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailsDriver {
    Jail,
    Linux,
}

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn parse(s: &str) -> Result<Ipv4Net, String> {
        let (a, p) = s.split_once('/').ok_or("expected ADDRESS/PREFIX")?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err("prefix length must be 8..=30".into());
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(format!(
                "host bits set; the network is {}/{prefix}",
                net.network()
            ));
        }
        Ok(net)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The host's own address in the range: the first usable one.
    pub fn host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    /// Addresses pods may get: all usable ones after the host's.
    pub fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network()) + 2;
        let last = u32::from(self.network()) | !self.mask(); // broadcast
        (first..last).map(Ipv4Addr::from)
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ipv4Net::parse(&s)
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every effective key with its expanded value, for `jetpack config`.
    values: BTreeMap<String, (String, Origin)>,
    pub root_zfs: String,
    pub root_mountpoint: PathBuf,
    pub datasets_driver: DatasetsDriver,
    pub jails_driver: JailsDriver,
    pub jail_interface: String,
    pub ip4_range: Ipv4Net,
    pub jail_name_prefix: String,
    pub jail_securelevel: i32,
    pub jail_devfs_ruleset: u32,
    pub jail_stop_timeout: u64,
    pub jail_params: Vec<(String, String)>,
    pub bob_providers: Vec<BobProviderConfig>,
    pub build_concurrency: usize,
    pub build_timeout: u64,
    pub build_validate_timeout: u64,
    pub mds_port: u16,
    pub mds_user: String,
    pub mds_signing_key: String,
    pub mds_token_key: String,
    pub data_dir: PathBuf,
    /// `base.import.allow`: private networks (CIDR) and host names a base
    /// import may fetch from, as written; checked where they are used.
    pub base_import_allow: Vec<String>,
    pub server: ServerConfig,
}

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

impl Config {
    /// Loads `path` (when given, it must exist; the default path may be
    /// absent) and applies `overrides` (`key=value`) on top.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut raw: Vec<(String, String, Origin)> = KEYS
            .iter()
            .map(|(k, v, _)| (k.to_string(), v.to_string(), Origin::Default))
            .collect();
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if Path::new(DEFAULT_PATH).exists() => Some(PathBuf::from(DEFAULT_PATH)),
            None => None,
        };
        // Files beside jetpack.conf (the server's keys and users) follow it.
        if let Some(dir) =
            path.and_then(|p| std::path::absolute(p).ok()?.parent().map(Path::to_path_buf))
        {
            raw.push((
                "conf.dir".into(),
                dir.display().to_string(),
                Origin::Default,
            ));
        }
        if let Some(file) = file {
            let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            raw.extend(parse_lines(&text, &file)?);
        }
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::Syntax {
                origin: "-o".into(),
                line: 0,
                why: format!("{o:?}: expected key=value"),
            })?;
            raw.push((k.trim().to_string(), v.trim().to_string(), Origin::Override));
        }
        Self::from_raw(raw)
    }

    fn from_raw(raw: Vec<(String, String, Origin)>) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<String, (String, Origin)> = BTreeMap::new();
        for (key, value, origin) in raw {
            if !is_known_key(&key) {
                return Err(match origin {
                    Origin::File(p, line) => ConfigError::Syntax {
                        origin: p.display().to_string(),
                        line,
                        why: format!("unknown key {key:?}"),
                    },
                    _ => ConfigError::UnknownKey(key),
                });
            }
            values.insert(key, (value, origin));
        }
        // Expansion sees the final value of every key, so later keys win
        // even when an earlier value refers to them.
        let snapshot = values.clone();
        for (key, (value, origin)) in values.iter_mut() {
            *value = expand(value, &snapshot, 0).map_err(|why| ConfigError::Value {
                origin: origin.to_string(),
                key: key.clone(),
                value: value.clone(),
                why,
            })?;
        }
        Self::typed(values)
    }

    fn typed(values: BTreeMap<String, (String, Origin)>) -> Result<Config, ConfigError> {
        let get = |k: &str| -> (&str, &Origin) {
            let (v, o) = &values[k];
            (v.as_str(), o)
        };
        let bad = |k: &str, why: String| {
            let (v, o) = get(k);
            ConfigError::Value {
                origin: o.to_string(),
                key: k.to_string(),
                value: v.to_string(),
                why,
            }
        };
        let number = |k: &str| -> Result<u64, ConfigError> {
            get(k)
                .0
                .parse::<u64>()
                .map_err(|_| bad(k, "expected a whole number".into()))
        };
        let datasets_driver = match get("datasets.driver").0 {
            "zfs" => DatasetsDriver::Zfs,
            "zfs-cli" => DatasetsDriver::ZfsCli,
            "dir" => DatasetsDriver::Dir,
            "auto" | "" => DatasetsDriver::Auto,
            _ => {
                return Err(bad(
                    "datasets.driver",
                    "expected zfs, zfs-cli, dir or auto".into(),
                ))
            }
        };
        let jails_driver = match get("jail.driver").0 {
            "jail" => JailsDriver::Jail,
            "linux" => JailsDriver::Linux,
            "auto" | "" if cfg!(target_os = "freebsd") => JailsDriver::Jail,
            "auto" | "" => JailsDriver::Linux,
            _ => return Err(bad("jail.driver", "expected jail, linux or auto".into())),
        };
        let ip4_range =
            Ipv4Net::parse(get("jail.ip4.range").0).map_err(|w| bad("jail.ip4.range", w))?;
        let interface = get("jail.interface").0.to_string();
        if interface.is_empty()
            || interface.len() > 15
            || !interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad(
                "jail.interface",
                "expected an interface name (1-15 letters, digits)".into(),
            ));
        }
        let prefix = get("jail.namePrefix").0.to_string();
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
        {
            return Err(bad(
                "jail.namePrefix",
                "only letters, digits, '-', '_' and ':'".into(),
            ));
        }
        let root_zfs = get("root.zfs").0.to_string();
        if root_zfs.is_empty()
            || root_zfs.split('/').any(|p| {
                p.is_empty()
                    || !p
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                    || p == "."
                    || p == ".."
            })
        {
            return Err(bad(
                "root.zfs",
                "expected a dataset name such as zroot/jetpack".into(),
            ));
        }
        let absolute = |k: &str| -> Result<PathBuf, ConfigError> {
            let p = PathBuf::from(get(k).0);
            if p.is_absolute() && !p.components().any(|c| c == std::path::Component::ParentDir) {
                Ok(p)
            } else {
                Err(bad(k, "expected an absolute path without '..'".into()))
            }
        };
        let port = |k: &str| -> Result<u16, ConfigError> {
            match number(k)? {
                n @ 1..=65535 => Ok(n as u16),
                _ => Err(bad(k, "expected a port 1..=65535".into())),
            }
        };
        let switch = |k: &str| -> Result<bool, ConfigError> {
            match get(k).0 {
                "on" | "yes" | "true" | "1" => Ok(true),
                "off" | "no" | "false" | "0" => Ok(false),
                _ => Err(bad(k, "expected on or off".into())),
            }
        };
        let positive = |k: &str| match number(k)? {
            0 => Err(bad(k, "at least 1".into())),
            n => Ok(n),
        };
        // `auto` (None) or a count of at least 1.
        let auto = |k: &str| match get(k).0 {
            "auto" => Ok(None),
            _ => positive(k).map(|n| Some(n as usize)),
        };
        let mds_port = port("mds.port")?;
        let server = ServerConfig {
            name: get("server.name").0.to_string(),
            listen: get("server.listen")
                .0
                .parse()
                .map_err(|_| bad("server.listen", "expected an IP address".into()))?,
            port: port("server.port")?,
            tls: switch("server.tls")?,
            auth: match get("server.auth").0 {
                "basic" => true,
                "none" => false,
                _ => return Err(bad("server.auth", "expected basic or none".into())),
            },
            dir: absolute("server.dir")?,
            htpasswd: absolute("server.htpasswd")?,
            certfile: absolute("server.certfile")?,
            keyfile: absolute("server.keyfile")?,
            max_body: number("server.maxbody")? as usize,
            max_upload: number("server.maxupload")?,
            log_lines: number("server.loglines")? as usize,
            verbose: switch("server.verboselogging")?,
            uplink_port: port("uplink.port")?,
            uplink_tls: switch("uplink.tls")?,
            uplink_url: get("uplink.url").0.to_string(),
            uplink_certfile: absolute("uplink.certfile")?,
            uplink_keyfile: absolute("uplink.keyfile")?,
            uplink_max_transport: u32::try_from(number("uplink.maxtransport")?)
                .map_err(|_| bad("uplink.maxtransport", "at most 4294967295".into()))?,
            uplink_log_bytes: number("uplink.logbytes")? as usize,
            uplink_ping: match number("uplink.ping")? {
                n @ 1..=9 => n,
                _ => {
                    return Err(bad(
                        "uplink.ping",
                        "1..=9: instances expect a ping within 10 s".into(),
                    ))
                }
            },
            uplink_auth_rate: match number("uplink.authrate")? {
                0 => return Err(bad("uplink.authrate", "at least 1".into())),
                n => n,
            },
            uplink_auth_burst: number("uplink.authburst")?.max(1),
            uplink_stats_history: number("uplink.statshistory")? as usize,
            api_limits: ConnLimits {
                handshake: Duration::from_secs(positive("server.timeout.handshake")?),
                head: Duration::from_secs(positive("server.timeout.head")?),
                idle: Duration::from_secs(positive("server.timeout.idle")?),
                body_stall: Duration::from_secs(positive("server.timeout.body")?),
                min_body_rate: number("server.minbodyrate")?,
                max_conns: auto("server.maxconns")?,
                max_conns_per_ip: positive("server.maxconnsperip")? as usize,
            },
            hangar_limits: ConnLimits {
                max_conns: auto("uplink.maxconns")?,
                max_conns_per_ip: positive("uplink.maxconnsperip")? as usize,
                ..ConnLimits::default()
            },
            login: LoginLimits {
                fail_rate: positive("server.login.failrate")? as f64,
                fail_burst: positive("server.login.failburst")? as f64,
                workers: auto("server.login.workers")?,
            },
        };
        let url = &server.uplink_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(
                "uplink.url",
                "expected http://HOST:PORT or https://HOST:PORT".into(),
            ));
        }
        let jail_params: Vec<(String, String)> = values
            .iter()
            .filter_map(|(k, (v, _))| {
                k.strip_prefix(JAIL_PARAM_PREFIX)
                    .map(|p| (p.to_string(), v.clone()))
            })
            .collect();
        for (name, value) in &jail_params {
            crate::runtime::jails::jail_params::check_param(name, value)
                .map_err(|why| bad(&format!("{JAIL_PARAM_PREFIX}{name}"), why))?;
        }
        let mut bob_providers = Vec::new();
        for (key, (value, _)) in &values {
            if let Some(name) = key.strip_prefix(BOB_PROVIDER_PREFIX) {
                bob_providers
                    .push(BobProviderConfig::parse(name, value).map_err(|why| bad(key, why))?);
            }
        }
        let base_import_allow = get("base.import.allow")
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Config {
            root_zfs,
            root_mountpoint: absolute("root.zfs.mountpoint")?,
            datasets_driver,
            jails_driver,
            jail_interface: interface,
            ip4_range,
            jail_name_prefix: prefix,
            jail_securelevel: get("jail.securelevel")
                .0
                .parse()
                .map_err(|_| bad("jail.securelevel", "expected -1..=3".into()))
                .and_then(|n: i32| {
                    if (-1..=3).contains(&n) {
                        Ok(n)
                    } else {
                        Err(bad("jail.securelevel", "expected -1..=3".into()))
                    }
                })?,
            jail_devfs_ruleset: number("jail.devfs.ruleset")? as u32,
            jail_stop_timeout: number("jail.stop.timeout")?,
            jail_params,
            bob_providers,
            build_concurrency: positive("build.concurrency")? as usize,
            build_timeout: positive("build.timeout")?,
            build_validate_timeout: positive("build.validate.timeout")?,
            mds_port,
            mds_user: get("mds.user").0.to_string(),
            mds_signing_key: get("mds.signing-key").0.to_string(),
            mds_token_key: get("mds.token-key").0.to_string(),
            data_dir: absolute("data.dir")?,
            base_import_allow,
            server,
            values,
        })
    }

    /// The effective value of `key`, as `jetpack config KEY` prints it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// Every effective key and value, sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }
}

fn is_known_key(key: &str) -> bool {
    KEYS.iter().any(|(k, _, _)| *k == key)
        || key.strip_prefix(JAIL_PARAM_PREFIX).is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
        })
        || key
            .strip_prefix(BOB_PROVIDER_PREFIX)
            .is_some_and(|p| crate::names::Name::new("bob provider name", p).is_ok())
}

fn parse_lines(text: &str, file: &Path) -> Result<Vec<(String, String, Origin)>, ConfigError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (k, v) = trimmed.split_once('=').ok_or_else(|| ConfigError::Syntax {
            origin: file.display().to_string(),
            line: line_no,
            why: format!("expected key = value, found {trimmed:?}"),
        })?;
        let key = k.trim();
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                origin: file.display().to_string(),
                line: line_no,
                why: "empty key".into(),
            });
        }
        out.push((
            key.to_string(),
            v.trim().to_string(),
            Origin::File(file.to_path_buf(), line_no),
        ));
    }
    Ok(out)
}

fn expand(
    value: &str,
    values: &BTreeMap<String, (String, Origin)>,
    depth: usize,
) -> Result<String, String> {
    if depth > 16 {
        return Err("${...} references nest too deep (a cycle?)".into());
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated ${")?;
        let name = &after[..end];
        let (v, _) = values
            .get(name)
            .ok_or_else(|| format!("${{{name}}} refers to an unknown key"))?;
        out.push_str(&expand(v, values, depth + 1)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text of jetpack.conf.sample: every key, commented out at its default.
pub fn sample() -> String {
    let mut s = String::from(
        "# jetpack.conf: key = value; '#' starts a comment; ${key} expands to another\n\
         # key's value; when a key is given twice the later one wins. Every key is\n\
         # shown here at its default. Extra FreeBSD jail parameters: jail.param.NAME = VALUE\n\
         # (for example jail.param.allow.raw_sockets = 1). Bob providers, the sources of\n\
         # builders: bob.provider.NAME = local DIR | http URL-OF-INDEX | oci URL-OF-REPOSITORY\n\
         # (for example bob.provider.includeos = oci https://registry-1.docker.io/includeos/builder).\n",
    );
    for (k, v, help) in KEYS {
        // The one default that differs by platform is shown for both.
        let v = if *k == "jail.interface" {
            "lo1 (FreeBSD) | jetpack0 (Linux)"
        } else {
            v
        };
        s.push_str(&format!("\n# {help}\n# {k} = {v}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jetpack.conf");
        std::fs::write(&path, text).unwrap();
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::load(Some(&path), &o)
    }

    #[test]
    fn defaults_expand_and_later_keys_win() {
        let c = load_text(
            "# comment\nroot.zfs.mountpoint = /srv/a\nroot.zfs.mountpoint = /srv/jp\n\ndata.dir = ${root.zfs.mountpoint}/state\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.root_mountpoint, PathBuf::from("/srv/jp"));
        assert_eq!(c.data_dir, PathBuf::from("/srv/jp/state"));
        assert_eq!(c.get("data.dir"), Some("/srv/jp/state"));
        assert_eq!(c.mds_port, 1104);
    }

    #[test]
    fn overrides_apply_last() {
        let c = load_text(
            "datasets.driver = zfs-cli\n",
            &["datasets.driver=dir", "jail.param.allow.raw_sockets=1"],
        )
        .unwrap();
        assert_eq!(c.datasets_driver, DatasetsDriver::Dir);
        assert_eq!(
            c.jail_params,
            vec![("allow.raw_sockets".to_string(), "1".to_string())]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = load_text("root.zfs = a/b\nbogus.key = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jetpack.conf:2") && e.contains("bogus.key"),
            "{e}"
        );
        let e = load_text("just words\n", &[]).unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
        let e = load_text("\n\nmds.port = 99999\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("jetpack.conf:3") && e.contains("mds.port"),
            "{e}"
        );
        let e = load_text("jail.ip4.range = 10.0.0.1/24\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("host bits"), "{e}");
        let e = load_text("data.dir = ${nope}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key"), "{e}");
        let e = load_text("jail.param.persist = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("jail.param.persist"), "{e}");
        let e = load_text("data.dir = relative/path\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
        assert!(load_text("", &["nokey"]).is_err());
        assert!(Config::load(Some(Path::new("/nonexistent/jetpack.conf")), &[]).is_err());
    }

    #[test]
    fn bob_providers_are_checked() {
        let c = load_text(
            "bob.provider.local = local /srv/bobs/\nbob.provider.hub = oci https://registry-1.docker.io/includeos/builder\n",
            &["bob.provider.idx=http http://127.0.0.1:8000/index.json"],
        )
        .unwrap();
        let kinds: Vec<(&str, BobProviderKind, &str)> = c
            .bob_providers
            .iter()
            .map(|p| (p.name.as_str(), p.kind, p.location.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "hub",
                    BobProviderKind::Oci,
                    "https://registry-1.docker.io/includeos/builder"
                ),
                (
                    "idx",
                    BobProviderKind::Http,
                    "http://127.0.0.1:8000/index.json"
                ),
                ("local", BobProviderKind::Local, "/srv/bobs"),
            ]
        );
        for bad in [
            "bob.provider.x=local relative/dir",
            "bob.provider.x=oci https://registry-only",
            "bob.provider.x=http /not/a/url",
            "bob.provider.x=ftp ftp://h/x",
            "bob.provider.x=local",
            "build.concurrency=0",
        ] {
            assert!(load_text("", &[bad]).is_err(), "{bad} was accepted");
        }
        assert!(matches!(
            load_text("", &["bob.provider.../x=local /d"]),
            Err(ConfigError::UnknownKey(_))
        ));
    }

    #[test]
    fn address_range() {
        let n = Ipv4Net::parse("10.5.0.0/29").unwrap();
        assert_eq!(n.host(), Ipv4Addr::new(10, 5, 0, 1));
        let pods: Vec<_> = n.pod_addresses().collect();
        assert_eq!(pods.first(), Some(&Ipv4Addr::new(10, 5, 0, 2)));
        assert_eq!(pods.last(), Some(&Ipv4Addr::new(10, 5, 0, 6)));
        assert_eq!(pods.len(), 5);
    }

    #[test]
    fn sample_lists_every_key_and_matches_the_shipped_file() {
        let s = sample();
        for (k, _, _) in KEYS {
            assert!(s.contains(&format!("# {k} = ")), "{k} missing");
        }
        let shipped = include_str!("../../jetpack.conf.sample");
        assert_eq!(
            shipped, s,
            "jetpack.conf.sample is stale: regenerate it with `jetpack config --sample`"
        );
    }
}
