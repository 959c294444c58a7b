//! Where jetpack keeps things: the root dataset (`root.zfs`) and its
//! mountpoint, the datasets driver, the state directory (`data.dir`), and
//! where base imports may fetch from (`base.import.allow`).

use std::path::PathBuf;

use super::values::Values;
use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetsDriver {
    Zfs,
    ZfsCli,
    Dir,
    Auto,
}

/// This section's fields of `Config`, under the same names.
pub(super) struct Store {
    pub root_zfs: String,
    pub root_mountpoint: PathBuf,
    pub datasets_driver: DatasetsDriver,
    pub data_dir: PathBuf,
    pub base_import_allow: Vec<String>,
}

pub(super) fn read(v: &Values) -> Result<Store, ConfigError> {
    let datasets_driver = match v.str("datasets.driver") {
        "zfs" => DatasetsDriver::Zfs,
        "zfs-cli" => DatasetsDriver::ZfsCli,
        "dir" => DatasetsDriver::Dir,
        "auto" | "" => DatasetsDriver::Auto,
        _ => {
            return Err(v.bad(
                "datasets.driver",
                "expected zfs, zfs-cli, dir or auto".into(),
            ))
        }
    };
    let root_zfs = v.str("root.zfs").to_string();
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
        return Err(v.bad(
            "root.zfs",
            "expected a dataset name such as zroot/jetpack".into(),
        ));
    }
    let base_import_allow = v
        .str("base.import.allow")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    Ok(Store {
        root_zfs,
        root_mountpoint: v.absolute("root.zfs.mountpoint")?,
        datasets_driver,
        data_dir: v.absolute("data.dir")?,
        base_import_allow,
    })
}
