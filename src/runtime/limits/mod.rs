//! A pod's resource limits: the `Limits` type (memory, cpus, pids, disk,
//! maxproc) with its parsing and checks, what a running pod uses against
//! them (`Usage`), and the backend trait with one driver per platform:
//! `cgroups` (Linux, cgroup v2 or v1, detected at run time) and `rctl`
//! (FreeBSD's rctl(8) rules on the jail). The disk limit is not a
//! backend's: it is a ZFS quota on the pod's clone (`Datasets::set_quota`).
//!
//! `maxproc` and `pids` are one thing on both platforms: the most
//! processes the pod may hold at once. Linux enforces it with the pids
//! controller (RLIMIT_NPROC counts every process of a uid on the host, and
//! a pod's root is the host's uid 0), FreeBSD with rctl's `maxproc`. Given
//! both, the lower wins.

#[cfg(target_os = "linux")]
pub mod cgroups;
pub mod rctl;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// Below this the kernel's own accounting (page tables, the holder) eats
/// the limit before the pod's program runs.
pub const MIN_MEMORY: u64 = 4 * MIB;
/// A ZFS quota smaller than this fails the clone's own metadata writes.
pub const MIN_DISK: u64 = MIB;
/// The kernels' own bound on pids (Linux pid_max at most 2^22).
pub const MAX_PIDS: u64 = 1 << 22;
/// The CFS period (and rctl's pcpu is in percents of one cpu): a quota
/// below 1 ms a period is refused by the kernel.
pub const MIN_CPUS: f64 = 0.01;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LimitsError {
    #[error("bad {what} {value:?}: {why}")]
    Bad {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("the {driver} datasets driver cannot limit disk use; use datasets.driver=zfs-cli")]
    NoDiskQuota { driver: &'static str },
    #[error("this host cannot enforce {what}: {why}")]
    Unsupported { what: String, why: String },
    #[error("{what}: {why}")]
    Sys { what: String, why: String },
}

fn bad(what: &'static str, value: impl ToString, why: impl Into<String>) -> LimitsError {
    LimitsError::Bad {
        what,
        value: value.to_string(),
        why: why.into(),
    }
}

/// What a pod may use. Every field is optional: an empty `Limits` makes
/// no cgroup and no rule at all (a pod start without limits costs nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Bytes of memory (Linux: memory.max, swap not allowed beyond it;
    /// FreeBSD: memoryuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// CPUs' worth of time (1.5 = one and a half cpus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Bytes of disk (a ZFS quota on the pod's clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// Processes at once, FreeBSD's word for `pids` (the lower of both wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxproc: Option<u64>,
}

impl Limits {
    /// Whether the pod needs a cgroup or rctl rules (disk is the dataset's).
    pub fn needs_backend(&self) -> bool {
        self.memory.is_some() || self.cpus.is_some() || self.process_cap().is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.needs_backend() && self.disk.is_none()
    }

    /// The most processes at once: the lower of `pids` and `maxproc`.
    pub fn process_cap(&self) -> Option<u64> {
        match (self.pids, self.maxproc) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Parses the command line's or the API's words; every value checked.
    pub fn parse(words: &LimitWords) -> Result<Limits, LimitsError> {
        let limits = Limits {
            memory: words
                .memory
                .as_deref()
                .map(|s| parse_size("memory", s))
                .transpose()?,
            cpus: words
                .cpus
                .as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<f64>()
                        .map_err(|_| bad("cpus", s, "not a number (e.g. 1 or 0.5)"))
                })
                .transpose()?,
            pids: words.pids,
            disk: words
                .disk
                .as_deref()
                .map(|s| parse_size("disk", s))
                .transpose()?,
            maxproc: words.maxproc,
        };
        limits.check()?;
        Ok(limits)
    }

    /// The bounds any platform can enforce; also run on limits read back.
    pub fn check(&self) -> Result<(), LimitsError> {
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return Err(bad("memory", m, "at least 4M (4 MiB)"));
            }
        }
        if let Some(c) = self.cpus {
            let host = host_cpus();
            if !c.is_finite() || c < MIN_CPUS {
                return Err(bad("cpus", c, "at least 0.01"));
            }
            if c > host as f64 {
                return Err(bad("cpus", c, format!("this host has {host}")));
            }
        }
        for (what, v) in [("pids", self.pids), ("maxproc", self.maxproc)] {
            if let Some(n) = v {
                if n == 0 || n > MAX_PIDS {
                    return Err(bad(what, n, format!("between 1 and {MAX_PIDS}")));
                }
            }
        }
        if let Some(d) = self.disk {
            if d < MIN_DISK {
                return Err(bad("disk", d, "at least 1M (1 MiB)"));
            }
        }
        Ok(())
    }
}

/// Limits as people write them: sizes with units (`64M`, `1G`), cpus as a
/// decimal. The CLI's flags and the API's `limits` object both read as this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitWords {
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids: Option<u64>,
    pub disk: Option<String>,
    pub maxproc: Option<u64>,
}

/// The host's cpus (the bound of `cpus`).
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `512K`, `64M`, `1G`, `2T` (binary units; an optional `i`/`iB`/`B`
/// after the letter) or plain bytes; a decimal before a unit (`1.5G`).
pub fn parse_size(what: &'static str, text: &str) -> Result<u64, LimitsError> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let factor = match unit {
        "" => 1,
        "K" => KIB,
        "M" => MIB,
        "G" => GIB,
        "T" => TIB,
        _ => return Err(bad(what, text, "unknown unit (use K, M, G or T, e.g. 64M)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| bad(what, text, "not a size (e.g. 512K, 64M, 1G)"))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad(what, text, "too large"));
    }
    Ok(bytes as u64)
}

/// A size as people read it: `64 MiB`, `1.5 GiB`, `512 KiB`, `100 B`.
pub fn show_size(bytes: u64) -> String {
    for (unit, factor) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= factor {
            let v = bytes as f64 / factor as f64;
            return if bytes.is_multiple_of(factor) {
                format!("{} {unit}", bytes / factor)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

/// What a running pod uses, against its limits where it has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Bytes of memory in use now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// CPU time used by the pod's processes, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_max: Option<f64>,
    /// Times the kernel killed a process of the pod for memory.
    #[serde(default)]
    pub oom_kills: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<u64>,
}

/// What a pod's exit says when its memory limit killed it.
pub fn oom_reason(limits: &Limits) -> String {
    match limits.memory {
        Some(m) => format!("killed: out of memory (limit {})", show_size(m)),
        None => "killed: out of memory".to_string(),
    }
}

/// The backend: one per platform, acting on a cell by its name (the jail
/// name, `jail.namePrefix` + the pod's id, unique per host and per test
/// host).
pub trait LimitsBackend {
    fn driver(&self) -> &'static str;
    /// Makes the cell's limits exist before its first process runs.
    fn apply(&self, cell: &str, limits: &Limits) -> Result<(), LimitsError>;
    /// What the cell uses now; `None` when it has no limits.
    fn usage(&self, cell: &str) -> Result<Option<Usage>, LimitsError>;
    /// Removes the cell's limits once its processes are gone. Idempotent.
    fn remove(&self, cell: &str) -> Result<(), LimitsError>;
}

/// A cell name becomes a cgroup directory or an rctl subject: only the
/// characters jail names are made of, never `.` or `..`.
pub fn check_cell_name(cell: &str) -> Result<(), LimitsError> {
    let fine = !cell.is_empty()
        && cell.len() <= 200
        && cell != "."
        && cell != ".."
        && cell
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(bad("cell name", cell, "not a jail name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("memory", "64M"), Ok(64 * MIB));
        assert_eq!(parse_size("memory", "64m"), Ok(64 * MIB));
        assert_eq!(parse_size("memory", "1G"), Ok(GIB));
        assert_eq!(parse_size("memory", "1GiB"), Ok(GIB));
        assert_eq!(parse_size("memory", "512K"), Ok(512 * KIB));
        assert_eq!(parse_size("memory", "1.5G"), Ok(GIB + GIB / 2));
        assert_eq!(parse_size("memory", "4096"), Ok(4096));
        assert!(parse_size("memory", "10X")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_size("memory", "M").is_err());
        assert!(parse_size("memory", "").is_err());
        assert!(parse_size("memory", "-1M").is_err());
        assert!(parse_size("memory", "1e30T").is_err());
    }

    #[test]
    fn sizes_show_in_binary_units() {
        assert_eq!(show_size(64 * MIB), "64 MiB");
        assert_eq!(show_size(GIB + GIB / 2), "1.5 GiB");
        assert_eq!(show_size(100), "100 B");
    }

    #[test]
    fn limits_are_checked() {
        let words = |m: &str, c: &str, p: u64| LimitWords {
            memory: Some(m.into()),
            cpus: Some(c.into()),
            pids: Some(p),
            ..Default::default()
        };
        let l = Limits::parse(&words("32M", "0.5", 8)).unwrap();
        assert_eq!(l.memory, Some(32 * MIB));
        assert_eq!(l.cpus, Some(0.5));
        assert!(
            Limits::parse(&words("1M", "0.5", 8)).is_err(),
            "memory < 4M"
        );
        assert!(Limits::parse(&words("32M", "0", 8)).is_err(), "cpus 0");
        assert!(Limits::parse(&words("32M", "x", 8)).is_err());
        assert!(Limits::parse(&words("32M", "100000", 8)).is_err());
        assert!(Limits::parse(&words("32M", "0.5", 0)).is_err(), "pids 0");
        let disk = LimitWords {
            disk: Some("100K".into()),
            ..Default::default()
        };
        assert!(Limits::parse(&disk).is_err(), "disk < 1M");
        assert!(Limits::default().is_empty());
        let both = Limits {
            pids: Some(20),
            maxproc: Some(10),
            ..Default::default()
        };
        assert_eq!(both.process_cap(), Some(10));
        assert!(both.needs_backend());
        let disk_only = Limits {
            disk: Some(GIB),
            ..Default::default()
        };
        assert!(!disk_only.needs_backend() && !disk_only.is_empty());
    }

    #[test]
    fn limits_round_trip_as_json() {
        let l = Limits {
            memory: Some(64 * MIB),
            cpus: Some(1.5),
            ..Default::default()
        };
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(text, r#"{"memory":67108864,"cpus":1.5}"#);
        assert_eq!(serde_json::from_str::<Limits>(&text).unwrap(), l);
        assert_eq!(
            serde_json::from_str::<Limits>("{}").unwrap(),
            Limits::default()
        );
    }

    #[test]
    fn cell_names_are_checked() {
        assert!(check_cell_name("jetpack-0a1b").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(check_cell_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_oom_reason_names_the_limit() {
        let l = Limits {
            memory: Some(64 * MIB),
            ..Default::default()
        };
        assert_eq!(oom_reason(&l), "killed: out of memory (limit 64 MiB)");
    }
}
