//! The expanded values of every key, and the typed readers the sections
//! use: each reads one key and, when its value is wrong, makes the error
//! that names the key, the value and where it was set.

use std::collections::BTreeMap;
use std::path::{Component, PathBuf};

use super::parse::Origin;
use super::ConfigError;

/// Every effective key with its expanded value and origin. Every key of
/// `KEYS` is present (its default at least), so reading one by its name
/// from the table cannot miss.
#[derive(Debug, Clone)]
pub(super) struct Values(BTreeMap<String, (String, Origin)>);

impl Values {
    pub(super) fn new(map: BTreeMap<String, (String, Origin)>) -> Values {
        Values(map)
    }

    /// The value of `key`, if it is set.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(v, _)| v.as_str())
    }

    /// Every key and value, sorted.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }

    /// The keys under `prefix` in key order, as (key, rest after the
    /// prefix, value).
    pub(super) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> + 'a {
        self.entries()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (k, rest, v)))
    }

    /// The value of a key of `KEYS` (always set: see the type).
    pub(super) fn str(&self, key: &str) -> &str {
        self.0[key].0.as_str()
    }

    /// The error for `key`'s value: `why` it is wrong.
    pub(super) fn bad(&self, key: &str, why: String) -> ConfigError {
        let (value, origin) = &self.0[key];
        ConfigError::Value {
            origin: origin.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            why,
        }
    }

    /// `bad`, for a value that may hold a secret: the error names the key
    /// and where it was set, never the value.
    pub(super) fn bad_unshown(&self, key: &str, why: String) -> ConfigError {
        ConfigError::Value {
            origin: self.0[key].1.to_string(),
            key: key.to_string(),
            value: "(not shown)".into(),
            why,
        }
    }

    pub(super) fn number(&self, key: &str) -> Result<u64, ConfigError> {
        self.str(key)
            .parse::<u64>()
            .map_err(|_| self.bad(key, "expected a whole number".into()))
    }

    pub(super) fn positive(&self, key: &str) -> Result<u64, ConfigError> {
        match self.number(key)? {
            0 => Err(self.bad(key, "at least 1".into())),
            n => Ok(n),
        }
    }

    /// `auto` (None) or a count of at least 1.
    pub(super) fn auto(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        match self.str(key) {
            "auto" => Ok(None),
            _ => self.positive(key).map(|n| Some(n as usize)),
        }
    }

    pub(super) fn port(&self, key: &str) -> Result<u16, ConfigError> {
        match self.number(key)? {
            n @ 1..=65535 => Ok(n as u16),
            _ => Err(self.bad(key, "expected a port 1..=65535".into())),
        }
    }

    pub(super) fn switch(&self, key: &str) -> Result<bool, ConfigError> {
        match self.str(key) {
            "on" | "yes" | "true" | "1" => Ok(true),
            "off" | "no" | "false" | "0" => Ok(false),
            _ => Err(self.bad(key, "expected on or off".into())),
        }
    }

    pub(super) fn absolute(&self, key: &str) -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(self.str(key));
        if p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) {
            Ok(p)
        } else {
            Err(self.bad(key, "expected an absolute path without '..'".into()))
        }
    }
}
