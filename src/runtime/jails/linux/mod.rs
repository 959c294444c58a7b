//! The `linux` jails driver: a cell is a holder process that is PID 1 of a
//! new pid namespace and owns new mount, UTS, IPC and network namespaces;
//! its root is pivoted into the pod's clone, with /proc and a minimal /dev.
//! A veth pair joins the cell to the host bridge `jail.interface`, which
//! holds the first address of the pod range, so the host tells pods apart by
//! source address.
//!
//! The holder is the jetpack executable itself (`jetpack __cell-init NAME`,
//! or a fork of a single-threaded spawner: `start`): a single-threaded
//! process may fork, unshare and mount freely, which a multi-threaded server
//! must not do between fork and exec. Processes enter the cell with
//! setns(2), like nsenter.
//!
//! This file owns the driver (create, command, open_pty, destroy, list) and
//! the spawner's view of a holder (its handle, /proc); `start` starts a
//! holder and reads its report; `holder` is the
//! `__cell-init` side (its entry point and its reaping loop), `setup` the
//! holder's making of the cell (namespaces, mounts, /dev, pivot_root,
//! hostname), `net` the cell's network (the bridge, the veth pair, the
//! pod's addresses and route), `relay` the middle process that mirrors the
//! exit of a process entering a cell.

mod holder;
pub mod instance_net;
mod net;
mod netlink;
mod relay;
mod setup;
mod start;

use std::fs::File;

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{chdir, fork, ForkResult, Pid};

use super::{sys_err, Cell, CellSpec, JailError, Jails, Process, Pty, POLL};
use crate::config::Ipv4Net;
use crate::runtime::limits::cgroups::{self, Cgroups};
use crate::runtime::limits::LimitsBackend;
pub use holder::cell_init_main;
use net::ensure_bridge;

/// The hidden subcommand that runs the holder.
pub const CELL_INIT: &str = "__cell-init";

pub struct LinuxJails {
    helper: PathBuf,
}

impl LinuxJails {
    pub fn new(helper: PathBuf) -> LinuxJails {
        // Holders outlive the process that starts them; as a subreaper this
        // process inherits the ones it started and can reap them when it
        // destroys them, instead of leaving zombies to an init that may not
        // reap (as in some sandboxes).
        let _ = nix::sys::prctl::set_child_subreaper(true);
        LinuxJails { helper }
    }
}

/// A holder found by pid and start time (the pair survives pid reuse).
struct Holder {
    name: String,
    pid: i32,
    start: u64,
}

impl Holder {
    fn parse(cell: &Cell) -> Result<Holder, JailError> {
        let mut it = cell.0.split(' ');
        match (
            it.next(),
            it.next().map(str::parse),
            it.next().map(str::parse),
            it.next(),
        ) {
            (Some(name), Some(Ok(pid)), Some(Ok(start)), None) => Ok(Holder {
                name: name.to_string(),
                pid,
                start,
            }),
            _ => Err(JailError::BadHandle(cell.0.clone())),
        }
    }

    fn cell(&self) -> Cell {
        Cell(format!("{} {} {}", self.name, self.pid, self.start))
    }

    fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start && state != 'Z' && state != 'X')
    }

    /// A pidfd for the holder, if this kernel has them (Linux 5.3+) and the
    /// holder is still the process we started.
    fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        // Checked after opening: the pidfd pins this very process.
        self.alive().then_some(fd)
    }

    fn ns(&self, kind: &str) -> Result<File, JailError> {
        let p = format!("/proc/{}/ns/{kind}", self.pid);
        File::open(&p).map_err(sys_err(format!("opening {p}")))
    }
}

/// State letter and start time (clock ticks after boot) of a process.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Capabilities a pod's processes keep (Docker's default set); every other
/// one leaves the bounding set before exec, so root in a pod cannot mount,
/// load modules or reach the host's devices.
const KEPT_CAPS: &[i32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

impl Jails for LinuxJails {
    fn driver(&self) -> &'static str {
        "linux"
    }

    fn prepare_network(&self, interface: &str, network: Ipv4Net) -> Result<(), JailError> {
        ensure_bridge(interface, network)
    }

    fn create(&self, spec: &CellSpec) -> Result<Cell, JailError> {
        let fail = |why: String| JailError::Create {
            name: spec.name.clone(),
            why,
        };
        // The cgroup exists before the cell, and every pod process joins it
        // before it execs (`command`). The holder stays out: it only
        // reaps, so the pod's limits are all the pod's (it is not one of
        // its pids, never the OOM killer's choice), and a v1 migration
        // costs a pod start about 10 ms.
        if spec.limits.needs_backend() {
            let limits_err = |source| JailError::Limits {
                name: spec.name.clone(),
                source,
            };
            let groups = Cgroups::host().map_err(limits_err)?;
            groups.apply(&spec.name, &spec.limits).map_err(limits_err)?;
        }
        let started = start::start(&self.helper, spec).map_err(fail);
        let (pid, outcome) = match started {
            Ok(start::Report { pid, outcome }) => (pid, outcome.map_err(fail)),
            Err(e) => {
                remove_cgroup(&spec.name);
                return Err(e);
            }
        };
        let Some(pid) = pid else {
            remove_cgroup(&spec.name);
            return Err(fail("the holder did not report its pid".into()));
        };
        let holder = Holder {
            name: spec.name.clone(),
            pid,
            start: proc_stat(pid).map(|(_, s)| s).unwrap_or(0),
        };
        let cell = holder.cell();
        let network = outcome.and_then(|_| net::connect(spec, &holder));
        if let Err(e) = network {
            // Undo: no half-made cell stays behind; should one stay, the
            // error says which (the runtime's undo stack does the same).
            if let Err(u) = self.destroy(&cell, Duration::ZERO) {
                tracing::error!("undoing after \"{e}\": cell {} left behind: {u}", spec.name);
                return Err(fail(format!(
                    "{e} (and left behind: cell {}: {u})",
                    spec.name
                )));
            }
            return Err(e);
        }
        Ok(cell)
    }

    fn command(&self, cell: &Cell, process: &Process) -> Result<Command, JailError> {
        let holder = Holder::parse(cell)?;
        if !holder.alive() {
            return Err(JailError::NotRunning(holder.name));
        }
        let (program, args) = process
            .argv
            .split_first()
            .ok_or_else(|| JailError::Create {
                name: holder.name.clone(),
                why: "empty command".into(),
            })?;
        // Mount last: after it, /proc paths are the pod's.
        let namespaces: Vec<(File, CloneFlags)> = vec![
            (holder.ns("ipc")?, CloneFlags::CLONE_NEWIPC),
            (holder.ns("uts")?, CloneFlags::CLONE_NEWUTS),
            (holder.ns("net")?, CloneFlags::CLONE_NEWNET),
            (holder.ns("pid")?, CloneFlags::CLONE_NEWPID),
            (holder.ns("mnt")?, CloneFlags::CLONE_NEWNS),
        ];
        // A cell with limits: the process joins its cgroup before it execs.
        let cgroup_procs = match Cgroups::host() {
            Ok(groups) => groups
                .join_files(&holder.name)
                .map_err(|source| JailError::Limits {
                    name: holder.name.clone(),
                    source,
                })?,
            Err(_) => Vec::new(),
        };
        let terminal = process.terminal;
        let spawner = std::process::id() as libc::pid_t;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear().envs(process.env.iter().cloned());
        // SAFETY: between fork and exec only async-signal-safe calls happen:
        // write, setns, chdir, prctl, fork, waitpid, pidfd_open, poll,
        // getppid, close_range, _exit.
        unsafe {
            cmd.pre_exec(move || {
                for (file, flag) in &namespaces {
                    setns(file.as_fd(), *flag)?;
                }
                chdir("/")?;
                for cap in 0..64 {
                    if !KEPT_CAPS.contains(&cap) {
                        libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
                    }
                }
                // setns(CLONE_NEWPID) places only children in the pod's pid
                // namespace: fork once more. The middle process (the relay)
                // mirrors the child's exit; it closes every other descriptor
                // so that the spawner sees exec succeed as soon as the child
                // execs.
                match fork()? {
                    ForkResult::Child => {
                        // Only the pod's process counts against its
                        // limits, not the relay that mirrors its exit.
                        cgroups::join_self(&cgroup_procs)?;
                        if terminal {
                            nix::unistd::setsid()?;
                            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        Ok(())
                    }
                    ForkResult::Parent { child } => {
                        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                        libc::_exit(relay::mirror(child, spawner))
                    }
                }
            });
        }
        Ok(cmd)
    }

    /// A pty of the pod's own devpts instance, so that the pod's processes
    /// see it as /dev/pts/N (tty(1), ttyname(3) work).
    fn open_pty(&self, cell: &Cell) -> Result<Pty, JailError> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let holder = Holder::parse(cell)?;
        let ptmx = format!("/proc/{}/root/dev/pts/ptmx", holder.pid);
        let master: OwnedFd = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&ptmx)
            .map_err(sys_err(format!("opening {ptmx}")))?
            .into();
        let unlock: libc::c_int = 0;
        // SAFETY: plain ioctls on a descriptor we own; TIOCGPTPEER returns a
        // new descriptor that we take ownership of at once.
        let slave = unsafe {
            if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
                return Err(sys_err("unlocking the pod's pty")(
                    std::io::Error::last_os_error(),
                ));
            }
            let fd = libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(sys_err("opening the pod's pty")(
                    std::io::Error::last_os_error(),
                ));
            }
            OwnedFd::from_raw_fd(fd)
        };
        Ok(Pty { master, slave })
    }

    fn is_running(&self, cell: &Cell) -> bool {
        Holder::parse(cell).map(|h| h.alive()).unwrap_or(false)
    }

    fn usage(&self, cell: &Cell) -> Option<crate::runtime::limits::Usage> {
        let holder = Holder::parse(cell).ok()?;
        Cgroups::host().ok()?.usage(&holder.name).ok().flatten()
    }

    fn destroy(&self, cell: &Cell, grace: Duration) -> Result<(), JailError> {
        let holder = Holder::parse(cell)?;
        if !holder.alive() {
            reap(holder.pid);
            return remove_limits(&holder.name);
        }
        let pid_ns = std::fs::read_link(format!("/proc/{}/ns/pid", holder.pid)).ok();
        if let Some(ns) = pid_ns.filter(|_| !grace.is_zero()) {
            // Ask the pod's processes to end, then give them `grace`.
            let members = pod_members(&ns, holder.pid);
            for pid in &members {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && !pod_members(&ns, holder.pid).is_empty() {
                std::thread::sleep(POLL * 5);
            }
        }
        // The holder is the pid namespace's init: killing it kills every
        // process left, and the network namespace with its veth goes too.
        // A pidfd opened before the kill says exactly when the holder has
        // exited, instead of a polling interval later.
        let pidfd = holder.pidfd();
        let _ = kill(Pid::from_raw(holder.pid), Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(fd) = &pidfd {
            wait_readable(fd, Duration::from_secs(10));
        }
        while holder.alive() {
            reap(holder.pid);
            if Instant::now() > deadline {
                return Err(JailError::Sys {
                    what: format!("stopping cell {}", holder.name),
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                });
            }
            std::thread::sleep(POLL);
        }
        reap(holder.pid);
        remove_limits(&holder.name)?;
        // The veth needs no removal: both ends were made in one step with
        // the pod's end inside the pod's network namespace, and the kernel
        // deletes the pair when that namespace goes. (Deleting it here would
        // wait on the namespace cleanup for tens of milliseconds.)
        Ok(())
    }

    fn attach_instance_net(
        &self,
        cell: &Cell,
        spec: &CellSpec,
        net: &super::instance_net::InstanceNet,
    ) -> Result<(), JailError> {
        let holder = Holder::parse(cell)?;
        if !holder.alive() {
            return Err(JailError::NotRunning(holder.name));
        }
        let pod = instance_net::PodSide {
            address: spec.address,
            network: spec.network,
            interface: instance_net::POD_LINK,
        };
        instance_net::attach_in(&holder.ns("net")?, pod, net)
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Cell)>, JailError> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir("/proc").map_err(sys_err("reading /proc"))?;
        for entry in rd.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if args.get(1) != Some(&CELL_INIT.as_bytes()) || !is_holder(pid) {
                continue;
            }
            let Some(name) = args.get(2).and_then(|a| std::str::from_utf8(a).ok()) else {
                continue;
            };
            let Some((state, start)) = proc_stat(pid) else {
                continue;
            };
            if name.starts_with(prefix) && state != 'Z' {
                let holder = Holder {
                    name: name.to_string(),
                    pid,
                    start,
                };
                out.push((name.to_string(), holder.cell()));
            }
        }
        Ok(out)
    }
}

/// A holder is PID 1 of its own namespace (its launcher, briefly alive
/// with the same command line, is not).
fn is_holder(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("NSpid:"))
                .map(|l| l.split_whitespace().last() == Some("1"))
        })
        .unwrap_or(false)
}

/// Removes a cell's cgroup, if it has one, once its processes are gone.
fn remove_limits(name: &str) -> Result<(), JailError> {
    match Cgroups::host() {
        Ok(groups) if groups.has(name) => groups.remove(name).map_err(|source| JailError::Limits {
            name: name.to_string(),
            source,
        }),
        _ => Ok(()),
    }
}

/// Undoing a create that failed before its holder ran: the cgroup goes.
fn remove_cgroup(name: &str) {
    if let Err(e) = remove_limits(name) {
        tracing::error!("undoing a failed start: {e}");
    }
}

/// Processes in pid namespace `ns` other than its holder.
fn pod_members(ns: &Path, holder: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != holder)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_deref()
                == Some(ns)
        })
        .filter(|pid| !matches!(proc_stat(*pid), Some(('Z', _)) | None))
        .collect()
}

/// Waits until `fd` is readable (a pidfd: its process exited) or `limit`.
fn wait_readable(fd: &std::os::fd::OwnedFd, limit: Duration) {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = nix::poll::PollTimeout::try_from(limit).unwrap_or(nix::poll::PollTimeout::MAX);
    let _ = nix::poll::poll(&mut fds, timeout);
}

fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_handles_round_trip() {
        let h = Holder {
            name: "jetpack-x".into(),
            pid: 42,
            start: 99,
        };
        let back = Holder::parse(&h.cell()).unwrap();
        assert_eq!(
            (back.name.as_str(), back.pid, back.start),
            ("jetpack-x", 42, 99)
        );
        assert!(Holder::parse(&Cell("x 1".into())).is_err());
        assert!(Holder::parse(&Cell("x a b".into())).is_err());
    }

    #[test]
    fn own_stat_parses() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
    }
}
