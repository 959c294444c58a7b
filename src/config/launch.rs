//! Launched instances' keys (`launch.*`): the hypervisor base their pods
//! are cloned from, the chainloader for ELF64 images, the devfs ruleset of
//! their jails, and their defaults and bounds.

use std::path::PathBuf;

use super::values::Values;
use super::ConfigError;
use crate::hypervisor::qemu::Accel;

/// This section's fields of `Config`.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The base instance pods are cloned from (images/qemu/make.sh makes it).
    pub base: String,
    /// The chainloader's path inside that base.
    pub chainloader: PathBuf,
    /// The devfs ruleset of instance jails (FreeBSD), which unhides vmm,
    /// nmdm and tap nodes.
    pub devfs_ruleset: u32,
    pub memory_mib: u64,
    pub cpus: u32,
    /// A console log's size before it is rotated (one old file is kept).
    pub console_bytes: u64,
    /// qemu's accelerator: `None` picks KVM when /dev/kvm opens.
    pub accel: Option<Accel>,
    /// Where kernels and initrds for the Linux boot path are found (by
    /// file name: a request never names a path).
    pub kernels: PathBuf,
}

pub(super) fn read(v: &Values) -> Result<LaunchConfig, ConfigError> {
    let chainloader = PathBuf::from(v.str("launch.chainloader"));
    if !chainloader.is_absolute() {
        return Err(v.bad("launch.chainloader", "expected an absolute path".into()));
    }
    let positive = |key: &str| -> Result<u64, ConfigError> {
        match v.number(key)? {
            0 => Err(v.bad(key, "expected a number above 0".into())),
            n => Ok(n),
        }
    };
    Ok(LaunchConfig {
        base: v.str("launch.base").to_string(),
        chainloader,
        devfs_ruleset: v.number("launch.devfs.ruleset")? as u32,
        memory_mib: positive("launch.memory")?,
        cpus: positive("launch.cpus")? as u32,
        console_bytes: positive("launch.console.bytes")?.max(4096),
        kernels: PathBuf::from(v.str("launch.kernels")),
        accel: match v.str("launch.accel") {
            "auto" => None,
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => return Err(v.bad("launch.accel", "expected kvm, tcg or auto".into())),
        },
    })
}
