//! Configuration: jetpack.conf in Jetpack's format (`key = value`, `#`
//! comments, `${key}` expansion, later keys win), `-o key=value` overrides,
//! and the typed view of it that the rest of jetpack reads.
//!
//! This file owns `Config`, its loading and its error. Reading the text is
//! parse.rs; the known keys and the sample file are keys.rs; values.rs
//! reads a value as a type; each area's keys are read by its own section:
//! store.rs (root dataset, datasets driver, data.dir), jail.rs, mds.rs,
//! server.rs (the API and the hangar; limits.rs their bounds), build.rs
//! (builds and bob providers), files.rs (the southbound file server),
//! imageservice.rs (the image-service compatibility listener).

use std::path::{Path, PathBuf};

mod build;
mod database;
mod disks;
mod files;
mod imageservice;
mod jail;
mod keys;
mod launch;
mod limits;
mod mds;
mod metrics;
mod parse;
mod server;
mod store;
mod values;

pub use build::{BobProviderConfig, BobProviderKind};
pub use database::{HostConfig, PostgresConfig, StoreDriver};
pub use disks::DisksConfig;
pub use files::FilesConfig;
pub use imageservice::ImageServiceConfig;
pub use jail::{Ipv4Net, JailsDriver};
pub use keys::{sample, BOB_PROVIDER_PREFIX, JAIL_PARAM_PREFIX, KEYS};
pub use launch::LaunchConfig;
pub use limits::{ConnLimits, LoginLimits};
pub use metrics::MetricsConfig;
pub use server::ServerConfig;
pub use store::DatasetsDriver;

use crate::names::JailParam;
use values::Values;

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

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every effective key with its expanded value, for `jetpack config`.
    values: Values,
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
    /// `jail.autostart`: serve starts the autostart pods.
    pub jail_autostart: bool,
    /// `jail.param.*`, checked.
    pub jail_params: Vec<JailParam>,
    pub bob_providers: Vec<BobProviderConfig>,
    /// `builders.dockerhub`: the default `DockerHub` provider is there.
    pub builders_dockerhub: bool,
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
    pub launch: LaunchConfig,
    pub metrics: MetricsConfig,
    /// `store.*`: the database of the fleet's tables.
    pub store: StoreDriver,
    /// `host.*`: this server among the fleet's hosts.
    pub host: HostConfig,
    /// `disks.*`: hypervisor disks made from images.
    pub disks: DisksConfig,
    pub files: FilesConfig,
    /// `imageservice.*`: the RackHD image-service compatibility listener.
    pub imageservice: ImageServiceConfig,
}

impl Config {
    /// Loads `path` (when given, it must exist; the default path may be
    /// absent) and applies `overrides` (`key=value`) on top.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut entries = keys::defaults();
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if Path::new(DEFAULT_PATH).exists() => Some(PathBuf::from(DEFAULT_PATH)),
            None => None,
        };
        // Files beside jetpack.conf (the server's keys and users) follow it.
        if let Some(dir) =
            path.and_then(|p| std::path::absolute(p).ok()?.parent().map(Path::to_path_buf))
        {
            entries.push((
                "conf.dir".into(),
                dir.display().to_string(),
                parse::Origin::Default,
            ));
        }
        if let Some(file) = file {
            let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            entries.extend(parse::lines(&text, &file)?);
        }
        for o in overrides {
            entries.push(parse::override_entry(o)?);
        }
        Self::typed(parse::resolve(entries)?)
    }

    /// One section per area, each reading its own keys.
    fn typed(values: Values) -> Result<Config, ConfigError> {
        let store = store::read(&values)?;
        let shared_store = database::read(&values)?;
        let host = database::read_host(&values)?;
        let jail = jail::read(&values)?;
        let mds = mds::read(&values)?;
        let server = server::read(&values)?;
        let build = build::read(&values)?;
        let launch = launch::read(&values)?;
        let metrics = metrics::read(&values)?;
        let disks = disks::read(&values)?;
        let files = files::read(&values)?;
        let imageservice = imageservice::read(&values)?;
        Ok(Config {
            root_zfs: store.root_zfs,
            root_mountpoint: store.root_mountpoint,
            datasets_driver: store.datasets_driver,
            jails_driver: jail.jails_driver,
            jail_interface: jail.jail_interface,
            ip4_range: jail.ip4_range,
            jail_name_prefix: jail.jail_name_prefix,
            jail_securelevel: jail.jail_securelevel,
            jail_devfs_ruleset: jail.jail_devfs_ruleset,
            jail_stop_timeout: jail.jail_stop_timeout,
            jail_autostart: jail.jail_autostart,
            jail_params: jail.jail_params,
            bob_providers: build.bob_providers,
            builders_dockerhub: build.builders_dockerhub,
            build_concurrency: build.build_concurrency,
            build_timeout: build.build_timeout,
            build_validate_timeout: build.build_validate_timeout,
            mds_port: mds.mds_port,
            mds_user: mds.mds_user,
            mds_signing_key: mds.mds_signing_key,
            mds_token_key: mds.mds_token_key,
            data_dir: store.data_dir,
            store: shared_store,
            host,
            base_import_allow: store.base_import_allow,
            server,
            launch,
            metrics,
            disks,
            files,
            imageservice,
            values,
        })
    }

    /// The effective value of `key`, as `jetpack config KEY` prints it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key)
    }

    /// Every effective key and value, sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.entries()
    }
}

/// `text` as jetpack.conf with `overrides`, for the sections' tests.
#[cfg(test)]
fn load_text(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jetpack.conf");
    std::fs::write(&path, text).unwrap();
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(Some(&path), &o)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
