//! `disks.*`: where the GRUB that makes hypervisor disks lives, the tools
//! it runs, and how long one of them may take (src/disks makes the disks).

use std::path::PathBuf;

use super::values::Values;
use super::ConfigError;

/// GRUB's i386-pc modules and boot images: Debian's grub-pc-bin puts them
/// here; FreeBSD's grub2-pcbsd under /usr/local.
#[cfg(target_os = "freebsd")]
pub const DEFAULT_GRUB_DIR: &str = "/usr/local/lib/grub/i386-pc";
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_GRUB_DIR: &str = "/usr/lib/grub/i386-pc";

#[derive(Debug, Clone, PartialEq)]
pub struct DisksConfig {
    /// GRUB's i386-pc directory (modules, boot images).
    pub grub_dir: PathBuf,
    /// The grub-mkrescue program (a name on PATH or a path).
    pub mkrescue: String,
    /// The xorriso program grub-mkrescue runs.
    pub xorriso: String,
    /// The qemu-img program that converts the raw disk.
    pub qemu_img: String,
    /// Seconds one tool may run before it is killed.
    pub timeout: u64,
}

pub(super) fn read(v: &Values) -> Result<DisksConfig, ConfigError> {
    let grub_dir = PathBuf::from(v.str("disks.grub.dir"));
    if !grub_dir.is_absolute() {
        return Err(v.bad("disks.grub.dir", "expected an absolute path".into()));
    }
    let program = |key: &str| -> Result<String, ConfigError> {
        let p = v.str(key);
        if p.is_empty() || p.starts_with('-') {
            return Err(v.bad(key, "expected a program name or path".into()));
        }
        Ok(p.to_string())
    };
    Ok(DisksConfig {
        grub_dir,
        mkrescue: program("disks.grub.mkrescue")?,
        xorriso: program("disks.xorriso")?,
        qemu_img: program("disks.qemu-img")?,
        timeout: v.positive("disks.timeout")?,
    })
}
