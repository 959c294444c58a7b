//! Reading jetpack.conf's text: `key = value` lines with `#` comments,
//! `-o key=value` overrides, `${key}` expansion over the final values, and
//! where each value came from, so that an error names the file and line.
//! What a key means is the sections' business; here a key is only known
//! (keys.rs) or not.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::keys::is_known_key;
use super::values::Values;
use super::ConfigError;

/// Where a value came from, so that an error can name the file and line.
#[derive(Debug, Clone)]
pub(super) enum Origin {
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

/// One `key = value` as given, before expansion.
pub(super) type Entry = (String, String, Origin);

/// The entries of a file's `text`, in order.
pub(super) fn lines(text: &str, file: &Path) -> Result<Vec<Entry>, ConfigError> {
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

/// One `-o key=value`.
pub(super) fn override_entry(o: &str) -> Result<Entry, ConfigError> {
    let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::Syntax {
        origin: "-o".into(),
        line: 0,
        why: format!("{o:?}: expected key=value"),
    })?;
    Ok((k.trim().to_string(), v.trim().to_string(), Origin::Override))
}

/// The effective values of `entries` (defaults first, overrides last): a
/// later entry replaces an earlier one, then every `${key}` is expanded.
pub(super) fn resolve(entries: Vec<Entry>) -> Result<Values, ConfigError> {
    let mut values: BTreeMap<String, (String, Origin)> = BTreeMap::new();
    for (key, value, origin) in entries {
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
    Ok(Values::new(values))
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{load_text, DatasetsDriver};
    use crate::names::JailParam;

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
            vec![JailParam::new("allow.raw_sockets", "1").unwrap()]
        );
    }
}
