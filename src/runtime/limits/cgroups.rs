//! The Linux limits driver: one cgroup per cell under a `jetpack` parent,
//! cgroup v2 when the unified hierarchy has the memory, pids and cpu
//! controllers, else the v1 hierarchies of those controllers (and
//! cpuacct), found in /proc/self/mountinfo once per process.
//!
//! The parent is at the hierarchy's root, not under this process's own
//! cgroup: v2 lets no cgroup with processes of its own hand controllers
//! to children (the root is the exception), and a pod's cgroup must not
//! pin the cgroup of the process that happened to start it.
//!
//! The jails driver makes the cgroup before the cell starts, and every
//! process entering the cell joins it in its pre_exec (`join_files`)
//! before it execs: a pod process never runs outside its limits, and what
//! it forks stays in. The cell's holder (its init, which only reaps)
//! stays out.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{check_cell_name, Limits, LimitsBackend, LimitsError, Usage};

/// The CFS period written with every quota (100 ms, the kernel's default).
const PERIOD_US: u64 = 100_000;
const PARENT: &str = "jetpack";
const V2_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// Where this host's cgroup hierarchies are.
#[derive(Debug, Clone, PartialEq)]
pub enum Cgroups {
    /// The unified hierarchy's mount point.
    V2 { root: PathBuf },
    /// Each v1 controller's mount point (cpu and cpuacct may share one).
    V1 {
        mounts: Vec<(&'static str, PathBuf)>,
    },
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LimitsError {
    let what = what.into();
    move |e| LimitsError::Sys {
        what,
        why: e.to_string(),
    }
}

impl Cgroups {
    /// This host's layout, detected once.
    pub fn host() -> Result<&'static Cgroups, LimitsError> {
        static HOST: OnceLock<Result<Cgroups, LimitsError>> = OnceLock::new();
        HOST.get_or_init(|| {
            let text = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(sys("reading /proc/self/mountinfo"))?;
            Cgroups::detect(&text, |p| std::fs::read_to_string(p).ok())
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// The layout from a mountinfo text; `read` reads a v2 root's
    /// cgroup.controllers.
    pub fn detect(
        mountinfo: &str,
        read: impl Fn(&Path) -> Option<String>,
    ) -> Result<Cgroups, LimitsError> {
        let mut v1: Vec<(&'static str, PathBuf)> = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mountpoint = left.split(' ').nth(4).map(unescape);
            let mut r = right.split(' ');
            let (fstype, super_opts) = (r.next(), r.nth(1).unwrap_or(""));
            let Some(mountpoint) = mountpoint else {
                continue;
            };
            match fstype {
                Some("cgroup2") => {
                    let has = read(&mountpoint.join("cgroup.controllers")).unwrap_or_default();
                    let have: Vec<&str> = has.split_whitespace().collect();
                    if V2_CONTROLLERS.iter().all(|c| have.contains(c)) {
                        return Ok(Cgroups::V2 { root: mountpoint });
                    }
                }
                Some("cgroup") => {
                    let opts: Vec<&str> = super_opts.split(',').collect();
                    for c in V1_CONTROLLERS {
                        if opts.contains(&c) && !v1.iter().any(|(k, _)| *k == c) {
                            v1.push((c, mountpoint.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        if v1.is_empty() {
            return Err(LimitsError::Unsupported {
                what: "memory, cpus or pids".into(),
                why: "no cgroup v2 hierarchy with the memory, pids and cpu controllers and no v1 ones are mounted".into(),
            });
        }
        Ok(Cgroups::V1 { mounts: v1 })
    }

    pub fn version(&self) -> u8 {
        match self {
            Cgroups::V2 { .. } => 2,
            Cgroups::V1 { .. } => 1,
        }
    }

    /// The cell's directory in the hierarchy of `controller`.
    pub fn dir(&self, controller: &str, cell: &str) -> Option<PathBuf> {
        match self {
            Cgroups::V2 { root } => Some(root.join(PARENT).join(cell)),
            Cgroups::V1 { mounts } => mounts
                .iter()
                .find(|(c, _)| *c == controller)
                .map(|(_, m)| m.join(PARENT).join(cell)),
        }
    }

    /// Every directory of the cell, each once.
    fn dirs(&self, cell: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for c in V1_CONTROLLERS {
            if let Some(d) = self.dir(c, cell) {
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        dirs
    }

    /// Whether the cell has a cgroup (it was given limits).
    pub fn has(&self, cell: &str) -> bool {
        check_cell_name(cell).is_ok() && self.dirs(cell).iter().any(|d| d.is_dir())
    }

    /// The v2 parent hands its controllers to its children.
    fn prepare_parent(&self) -> Result<(), LimitsError> {
        if let Cgroups::V2 { root } = self {
            let enable = "+memory +pids +cpu";
            write(&root.join("cgroup.subtree_control"), enable)?;
            let parent = root.join(PARENT);
            mkdir(&parent)?;
            write(&parent.join("cgroup.subtree_control"), enable)?;
        } else {
            for d in self.dirs("x") {
                if let Some(parent) = d.parent() {
                    mkdir(parent)?;
                }
            }
        }
        Ok(())
    }

    fn file(&self, controller: &str, cell: &str, name: &str) -> Result<PathBuf, LimitsError> {
        self.dir(controller, cell)
            .map(|d| d.join(name))
            .ok_or_else(|| LimitsError::Unsupported {
                what: controller.to_string(),
                why: format!("the cgroup v1 {controller} controller is not mounted"),
            })
    }

    fn write_limits(&self, cell: &str, limits: &Limits) -> Result<(), LimitsError> {
        let v2 = matches!(self, Cgroups::V2 { .. });
        if let Some(m) = limits.memory {
            if v2 {
                write(&self.file("memory", cell, "memory.max")?, &m.to_string())?;
                // The limit is of memory, not memory plus swap: past it the
                // kernel kills, as the pod was promised.
                let swap = self.file("memory", cell, "memory.swap.max")?;
                if swap.exists() {
                    write(&swap, "0")?;
                }
            } else {
                write(
                    &self.file("memory", cell, "memory.limit_in_bytes")?,
                    &m.to_string(),
                )?;
                let memsw = self.file("memory", cell, "memory.memsw.limit_in_bytes")?;
                if memsw.exists() {
                    write(&memsw, &m.to_string())?;
                }
            }
        }
        if let Some(n) = limits.process_cap() {
            write(&self.file("pids", cell, "pids.max")?, &n.to_string())?;
        }
        if let Some(c) = limits.cpus {
            let quota = cpu_quota(c);
            if v2 {
                write(
                    &self.file("cpu", cell, "cpu.max")?,
                    &format!("{quota} {PERIOD_US}"),
                )?;
            } else {
                write(
                    &self.file("cpu", cell, "cpu.cfs_period_us")?,
                    &PERIOD_US.to_string(),
                )?;
                write(
                    &self.file("cpu", cell, "cpu.cfs_quota_us")?,
                    &quota.to_string(),
                )?;
            }
        }
        Ok(())
    }

    /// The cell's cgroup.procs files, opened for a new process to write
    /// `0` (itself) to between fork and exec; none when it has no cgroup.
    pub fn join_files(&self, cell: &str) -> Result<Vec<File>, LimitsError> {
        if !self.has(cell) {
            return Ok(Vec::new());
        }
        self.dirs(cell)
            .into_iter()
            .filter(|d| d.is_dir())
            .map(|d| {
                let p = d.join("cgroup.procs");
                File::options()
                    .write(true)
                    .open(&p)
                    .map_err(sys(format!("opening {}", p.display())))
            })
            .collect()
    }
}

/// Joins the cgroups whose procs files are `files`: for pre_exec, only
/// write(2) (async-signal-safe).
pub fn join_self(files: &[File]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    for f in files {
        // SAFETY: write of a 1-byte static buffer to a descriptor we own.
        if unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CFS quota of `cpus` cpus in one period, at least the kernel's 1 ms.
pub fn cpu_quota(cpus: f64) -> u64 {
    ((cpus * PERIOD_US as f64).round() as u64).max(1000)
}

impl LimitsBackend for Cgroups {
    fn driver(&self) -> &'static str {
        match self {
            Cgroups::V2 { .. } => "cgroup2",
            Cgroups::V1 { .. } => "cgroup1",
        }
    }

    fn apply(&self, cell: &str, limits: &Limits) -> Result<(), LimitsError> {
        check_cell_name(cell)?;
        self.prepare_parent()?;
        for d in self.dirs(cell) {
            mkdir(&d)?;
        }
        self.write_limits(cell, limits).inspect_err(|_| {
            let _ = self.remove(cell);
        })
    }

    fn usage(&self, cell: &str) -> Result<Option<Usage>, LimitsError> {
        if !self.has(cell) {
            return Ok(None);
        }
        let read = |c: &str, f: &str| {
            self.dir(c, cell)
                .and_then(|d| std::fs::read_to_string(d.join(f)).ok())
        };
        let num = |c: &str, f: &str| read(c, f).and_then(|t| t.trim().parse::<u64>().ok());
        let mut u = Usage::default();
        match self {
            Cgroups::V2 { .. } => {
                u.memory_current = num("memory", "memory.current");
                u.cpu_seconds = read("cpu", "cpu.stat")
                    .and_then(|t| keyed(&t, "usage_usec"))
                    .map(|us| us as f64 / 1e6);
                u.oom_kills = read("memory", "memory.events")
                    .and_then(|t| keyed(&t, "oom_kill"))
                    .unwrap_or(0);
            }
            Cgroups::V1 { .. } => {
                u.memory_current = num("memory", "memory.usage_in_bytes");
                u.cpu_seconds = num("cpuacct", "cpuacct.usage").map(|ns| ns as f64 / 1e9);
                u.oom_kills = read("memory", "memory.oom_control")
                    .and_then(|t| keyed(&t, "oom_kill"))
                    .unwrap_or(0);
            }
        }
        u.pids_current = num("pids", "pids.current");
        Ok(Some(u))
    }

    fn remove(&self, cell: &str) -> Result<(), LimitsError> {
        check_cell_name(cell)?;
        for d in self.dirs(cell) {
            remove_dir(&d)?;
        }
        Ok(())
    }
}

/// `KEY VALUE` lines (cpu.stat, memory.events, memory.oom_control).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> PathBuf {
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(n) = u8::from_str_radix(digits, 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

fn write(path: &Path, value: &str) -> Result<(), LimitsError> {
    std::fs::write(path, value).map_err(sys(format!("writing {value:?} to {}", path.display())))
}

fn mkdir(path: &Path) -> Result<(), LimitsError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(sys(format!("creating {}", path.display()))(e)),
    }
}

/// Removes a cell's cgroup once the processes in it are gone: the kernel
/// refuses (EBUSY) while a dying process is still a member, so wait for
/// that condition, not a time.
fn remove_dir(dir: &Path) -> Result<(), LimitsError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(sys(format!("removing {}", dir.display()))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
30 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
31 25 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
32 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 25 0:31 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,name=systemd
";

    #[test]
    fn a_hybrid_host_without_v2_controllers_is_v1() {
        let c = Cgroups::detect(HYBRID, |_| Some("hugetlb\n".into())).unwrap();
        assert_eq!(c.version(), 1);
        assert_eq!(
            c.dir("memory", "jp-a"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/jetpack/jp-a"))
        );
        assert_eq!(c.dir("cpu", "jp-a"), c.dir("cpuacct", "jp-a"));
        assert_eq!(c.dirs("jp-a").len(), 3, "cpu and cpuacct share a hierarchy");
    }

    #[test]
    fn a_unified_host_with_its_controllers_is_v2() {
        let c = Cgroups::detect(HYBRID, |_| Some("cpuset cpu io memory pids\n".into())).unwrap();
        assert_eq!(
            c,
            Cgroups::V2 {
                root: "/sys/fs/cgroup/unified".into()
            }
        );
        assert_eq!(c.dirs("jp-a").len(), 1);
    }

    #[test]
    fn no_hierarchy_is_a_clear_error() {
        let err = Cgroups::detect("1 0 0:1 / / rw - ext4 /dev/sda rw\n", |_| None).unwrap_err();
        assert!(err.to_string().contains("cannot enforce"), "{err}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn keyed_files_and_quotas() {
        assert_eq!(
            keyed("usage_usec 1500\nuser_usec 1000\n", "usage_usec"),
            Some(1500)
        );
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"),
            Some(2)
        );
        assert_eq!(keyed("low 0\n", "oom_kill"), None);
        assert_eq!(cpu_quota(1.5), 150_000);
        assert_eq!(cpu_quota(0.001), 1000);
    }
}
