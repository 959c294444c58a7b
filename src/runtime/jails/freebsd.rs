//! The `jail` jails driver (FreeBSD). For each cell it owns a persistent
//! jail made with jail_set(2) through the `jail` crate, a devfs mounted at
//! ROOT/dev with the configured ruleset applied (and, for a root of Linux
//! programs, linprocfs, linsysfs, fdescfs and tmpfs where linux(4) wants
//! them), and the pod's address as a
//! /32 alias on `jail.interface` (lo1), which also carries the host's
//! address of the pod range (where the MDS listens). No jail.conf and no
//! jail(8): processes enter with jail_attach(2), the jail goes with
//! jail_remove(2).
//!
//! A cell handle is `NAME JID ADDRESS ROOT` (ADDRESS `-` when the jail has
//! none; ROOT is the rest and may hold spaces): the jid finds the jail fast,
//! the name guards against a reused jid, and the address and root let
//! `destroy` clean up even after the jail itself is gone.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jail::param::Value;
use jail::{RunningJail, StoppedJail};
use nix::errno::Errno;
use nix::mount::{unmount, MntFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::jail_params::{
    cell_mounts, jail_params, mount_args, real_dirs_below, unmount_order, CellMount,
};
use super::{sys_err, Cell, CellSpec, JailError, Jails, Process, POLL};
use crate::config::Ipv4Net;
use crate::runtime::tool;

pub struct FreeBsdJails;

impl FreeBsdJails {
    pub fn new() -> FreeBsdJails {
        FreeBsdJails
    }
}

impl Default for FreeBsdJails {
    fn default() -> Self {
        FreeBsdJails::new()
    }
}

/// What a cell handle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Handle {
    name: String,
    jid: i32,
    address: Option<Ipv4Addr>,
    root: PathBuf,
}

impl Handle {
    fn parse(cell: &Cell) -> Result<Handle, JailError> {
        let bad = || JailError::BadHandle(cell.0.clone());
        let mut it = cell.0.splitn(4, ' ');
        let (Some(name), Some(jid), Some(address), Some(root)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        let handle = Handle {
            name: name.to_string(),
            jid: jid.parse().map_err(|_| bad())?,
            address: match address {
                "-" => None,
                a => Some(a.parse().map_err(|_| bad())?),
            },
            root: PathBuf::from(root),
        };
        // Strict: only what `cell()` writes parses (no "+7", no "07", no
        // relative root, no odd name).
        if handle.jid <= 0
            || check_name(&handle.name).is_err()
            || !handle.root.is_absolute()
            || handle.cell() != *cell
        {
            return Err(bad());
        }
        Ok(handle)
    }

    fn cell(&self) -> Cell {
        let address = self
            .address
            .map_or_else(|| "-".to_string(), |a| a.to_string());
        Cell(format!(
            "{} {} {} {}",
            self.name,
            self.jid,
            address,
            self.root.display()
        ))
    }

    /// The live jail, if the jid still names this cell's jail.
    fn running(&self) -> Option<RunningJail> {
        let jail = RunningJail::from_jid(self.jid)?;
        (jail.name().ok()? == self.name).then_some(jail)
    }
}

/// Jail names jetpack makes: the kernel reads an all-digit name as a jid
/// and splits a dotted one into a hierarchy, and a handle is space-separated.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("a jail name must be 1 to 255 characters".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a jail name must not be all digits".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a jail name may hold only letters, digits, '-' and '_'".into());
    }
    Ok(())
}

// ---- jail parameters: from jail.conf-style strings to jail_set(2) values ----

const SJPARAM: &str = "security.jail.param";

/// The sysctl kind (CTLTYPE_*) and format of a jail parameter, found the way
/// libjail finds them: the kernel describes every parameter it knows under
/// security.jail.param.
fn param_kind(name: &str) -> io::Result<(libc::c_int, String)> {
    let full = format!("{SJPARAM}.{name}");
    let cname = CString::new(full.as_str())?;
    let mut mib = vec![0 as libc::c_int; libc::CTL_MAXNAME as usize];
    let mut len: libc::size_t = mib.len();
    // SAFETY: mib has room for `len` entries; cname is NUL-terminated.
    if unsafe { libc::sysctlnametomib(cname.as_ptr(), mib.as_mut_ptr(), &mut len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    mib.truncate(len);
    let (kind, format) = oid_format(&mib)?;
    if kind != libc::CTLTYPE_NODE {
        return Ok((kind, format));
    }
    // A parameter with children (allow.mount, ip4, host) is a node whose
    // value is described by an empty-named child registered right before or
    // after it, so numbered one off: libjail looks there too.
    let last = *mib
        .last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let wanted = format!("{full}.");
    for n in [last - 1, last + 1] {
        let mut child = mib.clone();
        child.push(n);
        if oid_name(&child).ok().as_deref() == Some(wanted.as_str()) {
            return oid_format(&child);
        }
    }
    Err(io::Error::from(io::ErrorKind::NotFound))
}

/// Queries the sysctl meta-OID `{0, what, mib...}` into `buf`.
fn sysctl_meta(what: libc::c_int, mib: &[libc::c_int], buf: &mut [u8]) -> io::Result<usize> {
    let mut query = vec![0, what];
    query.extend_from_slice(mib);
    let mut len: libc::size_t = buf.len();
    // SAFETY: query and buf are valid for their lengths; nothing is written.
    let r = unsafe {
        libc::sysctl(
            query.as_ptr(),
            query.len() as libc::c_uint,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len)
}

fn oid_format(mib: &[libc::c_int]) -> io::Result<(libc::c_int, String)> {
    let mut buf = [0u8; 256];
    let len = sysctl_meta(libc::CTL_SYSCTL_OIDFMT, mib, &mut buf)?;
    // A u_int kind, then the format as a C string.
    let (kind, format) = buf[..len]
        .split_at_checked(4)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    let kind =
        u32::from_ne_bytes([kind[0], kind[1], kind[2], kind[3]]) as libc::c_int & libc::CTLTYPE;
    let format = CStr::from_bytes_until_nul(format)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((kind, format))
}

fn oid_name(mib: &[libc::c_int]) -> io::Result<String> {
    let mut buf = [0u8; 1024];
    let len = sysctl_meta(libc::CTL_SYSCTL_NAME, mib, &mut buf)?;
    CStr::from_bytes_until_nul(&buf[..len])
        .map(|s| s.to_string_lossy().into_owned())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `allow.mount.devfs` -> `allow.mount.nodevfs`, `persist` -> `nopersist`.
fn no_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((head, tail)) => format!("{head}.no{tail}"),
        None => format!("no{name}"),
    }
}

/// One parameter as jail_set(2) takes it: the name to send (a boolean is
/// said by its name or its `no` name: the kernel ignores a boolean's value,
/// so `allow.raw_sockets = 0` sent as is would *allow* raw sockets) and a
/// value of the kernel's type for it.
fn typed(name: &str, value: &str) -> Result<(String, Value), String> {
    let (kind, format) = param_kind(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => format!("this kernel has no jail parameter {name}"),
        _ => format!("looking up jail parameter {name}: {e}"),
    })?;
    let bad = |what: &str| format!("jail parameter {name} = {value:?}: expected {what}");
    fn num<T: std::str::FromStr>(
        v: &str,
        what: &str,
        bad: &dyn Fn(&str) -> String,
    ) -> Result<T, String> {
        v.parse().map_err(|_| bad(what))
    }
    let typed = match kind {
        libc::CTLTYPE_INT if format.starts_with('B') => {
            let on = parse_bool(value).ok_or_else(|| bad("a boolean (0 or 1)"))?;
            let sent = if on { name.to_string() } else { no_name(name) };
            return Ok((sent, Value::Int(1)));
        }
        libc::CTLTYPE_INT if format == "E,jailsys" => Value::Int(match value {
            "disable" => 0,
            "new" => 1,
            "inherit" => 2,
            v => num(v, "disable, new or inherit", &bad)?,
        }),
        libc::CTLTYPE_INT => Value::Int(num(value, "an integer", &bad)?),
        libc::CTLTYPE_UINT => Value::Uint(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_LONG => Value::Long(num(value, "an integer", &bad)?),
        libc::CTLTYPE_ULONG => Value::Ulong(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_S64 => Value::S64(num(value, "an integer", &bad)?),
        libc::CTLTYPE_U64 => Value::U64(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_S8 => Value::S8(num(value, "an integer", &bad)?),
        libc::CTLTYPE_S16 => Value::S16(num(value, "an integer", &bad)?),
        libc::CTLTYPE_S32 => Value::S32(num(value, "an integer", &bad)?),
        libc::CTLTYPE_U8 => Value::U8(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_U16 => Value::U16(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_U32 => Value::U32(num(value, "an unsigned integer", &bad)?),
        libc::CTLTYPE_STRING => Value::String(value.to_string()),
        libc::CTLTYPE_STRUCT if format == "S,in_addr" => Value::Ipv4Addrs(
            value
                .split(',')
                .map(|a| a.trim().parse::<Ipv4Addr>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("IPv4 addresses separated by commas"))?,
        ),
        libc::CTLTYPE_STRUCT if format == "S,in6_addr" => Value::Ipv6Addrs(
            value
                .split(',')
                .map(|a| a.trim().parse::<Ipv6Addr>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("IPv6 addresses separated by commas"))?,
        ),
        _ => {
            return Err(format!(
                "jail parameter {name} has a type jetpack cannot set ({kind}, {format:?})"
            ))
        }
    };
    Ok((name.to_string(), typed))
}

/// The jail of `spec`, ready to start; every parameter is typed before
/// anything changes on the host, so a bad one fails early.
fn stopped_jail(spec: &CellSpec) -> Result<StoppedJail, String> {
    let mut jail = StoppedJail::new(spec.root.clone());
    for (name, value) in jail_params(spec) {
        // jail_create adds path and persist itself.
        if name == "path" || name == "persist" {
            continue;
        }
        let (name, value) = typed(&name, &value)?;
        jail = jail.param(name, value);
    }
    Ok(jail)
}

// ---- the host side: interface, addresses, mounts ----

/// The host's interfaces with their IPv4 addresses: one entry per address
/// of any family, so every interface shows (its link-level entry has no
/// IPv4 address).
fn interfaces() -> io::Result<Vec<(String, Option<Ipv4Addr>)>> {
    let all = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(all
        .map(|a| {
            let address = a
                .address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .map(|sin| sin.ip());
            (a.interface_name, address)
        })
        .collect())
}

/// Makes `jail.interface` (a cloned lo1 by default) exist and carry the
/// host's address of the pod range; idempotent, safe against a concurrent
/// creator, and never undone: it is shared by every pod and the MDS.
fn ensure_interface(iface: &str, network: Ipv4Net) -> Result<(), JailError> {
    let all = interfaces().map_err(sys_err("listing interfaces"))?;
    if !all.iter().any(|(name, _)| name == iface) {
        match tool::run("ifconfig", &[iface, "create"]) {
            Ok(_) => {}
            Err(e) if e.stderr().contains("exists") => {}
            Err(e) => return Err(e.into()),
        }
    }
    let host = network.host();
    if !all
        .iter()
        .any(|(name, a)| name == iface && *a == Some(host))
    {
        add_alias(iface, host)?;
    }
    Ok(())
}

fn add_alias(iface: &str, address: Ipv4Addr) -> Result<(), JailError> {
    let cidr = format!("{address}/32");
    match tool::run("ifconfig", &[iface, "inet", cidr.as_str(), "alias"]) {
        Ok(_) => Ok(()),
        // Left by a crash: the address is this pod's by allocation.
        Err(e) if e.stderr().contains("File exists") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `address` from whatever interface holds it, unless another
/// live jail uses it: after this cell went, the address may have been given
/// to a new pod, and a repeated destroy must not take it away.
fn remove_alias(address: Ipv4Addr, own_name: &str) -> Result<(), JailError> {
    let used_elsewhere = RunningJail::all().any(|j| {
        j.name().map(|n| n != own_name).unwrap_or(false)
            && j.param("ip4.addr")
                .and_then(Value::unpack_ipv4)
                .map(|a| a.contains(&address))
                .unwrap_or(false)
    });
    if used_elsewhere {
        return Ok(());
    }
    let all = interfaces().map_err(sys_err("listing interfaces"))?;
    let Some((iface, _)) = all.iter().find(|(_, a)| *a == Some(address)) else {
        return Ok(());
    };
    let addr = address.to_string();
    match tool::run(
        "ifconfig",
        &[iface.as_str(), "inet", addr.as_str(), "-alias"],
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.stderr().contains("Can't assign requested address") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Mounts the cell's file systems (`cell_mounts`: devfs, and the Linux
/// ABI's for a Linux root) in its root; on an error, none stays.
fn mount_cell(spec: &CellSpec) -> Result<(), String> {
    for mount in cell_mounts(spec) {
        if let Err(e) = mount_one(spec, mount) {
            let _ = unmount_cell(&spec.root);
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(spec: &CellSpec, mount: &CellMount) -> Result<(), String> {
    let target = spec.root.join(mount.path);
    // mount(8) follows symlinks: a base whose /dev or /proc pointed
    // elsewhere would get it mounted over a host directory. Every
    // directory on the way is checked (dev/fd lies in the devfs just
    // mounted, which the pod cannot change before it starts).
    let mut at = spec.root.clone();
    for part in Path::new(mount.path).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| format!("creating {}: {e}", at.display()))?
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    tool::run("mount", &mount_args(&spec.root, mount)).map_err(|e| {
        if mount.fstype.starts_with("lin") {
            format!(
                "{e} (the pod's base holds Linux programs: load the Linux ABI with \
                 `kldload linux64`, or `sysrc linux_enable=YES`)"
            )
        } else {
            e.to_string()
        }
    })?;
    if mount.fstype == "devfs" && spec.devfs_ruleset != 0 {
        let ruleset = spec.devfs_ruleset.to_string();
        let args = [
            OsStr::new("-m"),
            target.as_os_str(),
            OsStr::new("rule"),
            OsStr::new("-s"),
            OsStr::new(&ruleset),
            OsStr::new("applyset"),
        ];
        tool::run("devfs", &args).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Unmounts everything a cell may have mounted in `root`, inner mounts
/// first; what is not mounted is fine.
fn unmount_cell(root: &Path) -> Result<(), JailError> {
    unmount_order().try_for_each(|m| unmount_stack(root, m.path))
}

/// Unmounts every file system stacked at `root`/`relative`.
fn unmount_stack(root: &Path, relative: &str) -> Result<(), JailError> {
    let path = root.join(relative);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = POLL;
    loop {
        if !real_dirs_below(root, relative) {
            return Ok(());
        }
        // Processes killed by jail_remove may still hold devices open for a
        // moment; after the deadline, force.
        let flags = if Instant::now() < deadline {
            MntFlags::empty()
        } else {
            MntFlags::MNT_FORCE
        };
        match unmount(&path, flags) {
            Ok(()) => continue, // another one may be stacked below
            // Not a mount point (any more): done.
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) if !flags.contains(MntFlags::MNT_FORCE) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(JailError::Sys {
                    what: format!("unmounting {}", path.display()),
                    source: io::Error::from(e),
                })
            }
        }
    }
}

/// Effects of `create` to undo, in reverse, when a later step fails.
enum Undo {
    Alias(Ipv4Addr),
    Mounts,
}

// ---- processes ----

/// Enters jail `jid` from a freshly forked child.
///
/// jail_attach(2) refuses (EPERM) a process that holds any open directory,
/// and a child forked from the multi-threaded server inherits whatever its
/// other threads had open at that instant (read_dir, SQLite's directory
/// fsync), close-on-exec or not. So the child first closes the directories
/// among its descriptors above stdio: it is single-threaded, so the count
/// of open descriptors (kern.proc.nfds) bounds the scan exactly.
///
/// # Safety
///
/// Only in a forked child before exec or _exit: it calls only
/// async-signal-safe functions (sysctl, fstat, close, jail_attach) and does
/// not allocate.
unsafe fn attach(jid: i32) -> io::Result<()> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_NFDS];
    let mut open: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    if libc::sysctl(
        mib.as_ptr(),
        mib.len() as libc::c_uint,
        (&mut open as *mut libc::c_int).cast(),
        &mut len,
        std::ptr::null(),
        0,
    ) != 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut seen = 0;
    let mut fd: libc::c_int = 0;
    // The bound only guards against a count that lies.
    while seen < open && fd < 1 << 24 {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 {
            seen += 1;
            if fd > 2 && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                libc::close(fd);
            }
        }
        fd += 1;
    }
    if libc::jail_attach(jid) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` (0 only probes) to every process of jail `jid` from a
/// child attached to it, where kill(-1) reaches exactly the jail's
/// processes. Ok(true) when there was at least one.
fn signal_jail(jid: i32, signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: between fork and _exit the child calls only async-signal-safe
    // functions (those of `attach`, kill, _exit); nothing allocates.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe {
            if attach(jid).is_err() {
                libc::_exit(2);
            }
            let code = if libc::kill(-1, signal) == 0 {
                0
            } else if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                1
            } else {
                3
            };
            libc::_exit(code)
        },
        pid => loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(true),
                Ok(WaitStatus::Exited(_, 1)) => return Ok(false),
                Ok(WaitStatus::Exited(_, code)) => {
                    return Err(io::Error::other(format!(
                        "signalling jail {jid}: helper exited {code}"
                    )))
                }
                Ok(WaitStatus::Signaled(..)) => {
                    return Err(io::Error::other("signalling helper was killed"))
                }
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        },
    }
}

impl Jails for FreeBsdJails {
    fn prepare_network(&self, interface: &str, network: Ipv4Net) -> Result<(), JailError> {
        ensure_interface(interface, network)
    }

    fn driver(&self) -> &'static str {
        "jail"
    }

    fn create(&self, spec: &CellSpec) -> Result<Cell, JailError> {
        let fail = |why: String| JailError::Create {
            name: spec.name.clone(),
            why,
        };
        check_name(&spec.name).map_err(fail)?;
        if !spec.root.is_absolute() || !spec.root.is_dir() {
            return Err(fail(format!(
                "root {} is not a directory",
                spec.root.display()
            )));
        }
        let stopped = stopped_jail(spec).map_err(fail)?;
        ensure_interface(&spec.interface, spec.network)?;

        let mut undo: Vec<Undo> = Vec::new();
        let started = (|| {
            add_alias(&spec.interface, spec.address)?;
            undo.push(Undo::Alias(spec.address));
            mount_cell(spec).map_err(fail)?;
            undo.push(Undo::Mounts);
            stopped.start().map_err(|e| fail(e.to_string()))
        })();
        match started {
            Ok(jail) => Ok(Handle {
                name: spec.name.clone(),
                jid: jail.jid,
                address: Some(spec.address),
                root: spec.root.clone(),
            }
            .cell()),
            Err(e) => {
                for step in undo.iter().rev() {
                    let _ = match step {
                        Undo::Mounts => unmount_cell(&spec.root),
                        Undo::Alias(a) => remove_alias(*a, &spec.name),
                    };
                }
                Err(e)
            }
        }
    }

    fn command(&self, cell: &Cell, process: &Process) -> Result<Command, JailError> {
        let handle = Handle::parse(cell)?;
        let jail = handle
            .running()
            .ok_or_else(|| JailError::NotRunning(handle.name.clone()))?;
        let (program, args) = process
            .argv
            .split_first()
            .ok_or_else(|| JailError::Create {
                name: handle.name.clone(),
                why: "empty command".into(),
            })?;
        let jid = jail.jid;
        let terminal = process.terminal;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear().envs(process.env.iter().cloned());
        // SAFETY: between fork and exec only async-signal-safe calls happen:
        // those of `attach`, chdir, setsid, ioctl. (The jail crate's `Jailed`
        // would log from the child, which may allocate, and would trip over
        // inherited directories.)
        unsafe {
            cmd.pre_exec(move || {
                attach(jid)?;
                if libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if terminal {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    fn is_running(&self, cell: &Cell) -> bool {
        Handle::parse(cell).ok().and_then(|h| h.running()).is_some()
    }

    fn destroy(&self, cell: &Cell, grace: Duration) -> Result<(), JailError> {
        let handle = Handle::parse(cell)?;
        if let Some(jail) = handle.running() {
            // A helper that cannot signal (or wait) ends the grace early:
            // jail_remove below kills whatever is left anyway.
            if !grace.is_zero() && signal_jail(jail.jid, libc::SIGTERM).unwrap_or(false) {
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline {
                    std::thread::sleep(POLL * 25);
                    if !signal_jail(jail.jid, 0).unwrap_or(false) {
                        break;
                    }
                }
            }
            // jail_remove(2) SIGKILLs what is left and removes the jail.
            if let Err(e) = jail.kill() {
                // The crate also clears rctl rules after the removal; an error
                // there leaves nothing of the jail behind.
                if handle.running().is_some() {
                    return Err(JailError::Sys {
                        what: format!("removing jail {}", handle.name),
                        source: io::Error::other(e.to_string()),
                    });
                }
            }
        }
        unmount_cell(&handle.root)?;
        if let Some(address) = handle.address {
            remove_alias(address, &handle.name)?;
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Cell)>, JailError> {
        let mut out = Vec::new();
        for jail in RunningJail::all() {
            // A jail that goes away while being read is simply not listed.
            let Ok(name) = jail.name() else { continue };
            if !name.starts_with(prefix) || check_name(&name).is_err() {
                continue;
            }
            let Ok(root) = jail.path() else { continue };
            let address = jail
                .param("ip4.addr")
                .and_then(Value::unpack_ipv4)
                .ok()
                .and_then(|a| a.first().copied());
            let handle = Handle {
                name: name.clone(),
                jid: jail.jid,
                address,
                root,
            };
            out.push((name, handle.cell()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_parse_strictly() {
        let h = Handle {
            name: "jetpack-0b7e".into(),
            jid: 12,
            address: Some("172.23.0.5".parse().unwrap()),
            root: "/var/jet pack/pods/0b7e".into(),
        };
        assert_eq!(
            h.cell().0,
            "jetpack-0b7e 12 172.23.0.5 /var/jet pack/pods/0b7e"
        );
        assert_eq!(Handle::parse(&h.cell()).unwrap(), h);
        let none = Handle {
            address: None,
            ..h.clone()
        };
        assert_eq!(Handle::parse(&none.cell()).unwrap(), none);
        for bad in [
            "",
            "jetpack-x 12 172.23.0.5",
            "jetpack-x +12 172.23.0.5 /r",
            "jetpack-x 012 172.23.0.5 /r",
            "jetpack-x 0 172.23.0.5 /r",
            "jetpack-x -3 172.23.0.5 /r",
            "jetpack-x 12 172.23.0.300 /r",
            "jetpack-x 12 172.23.0.5 relative",
            "jetpack.x 12 172.23.0.5 /r",
            "1234 12 172.23.0.5 /r",
        ] {
            assert!(
                Handle::parse(&Cell(bad.into())).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn no_names() {
        assert_eq!(no_name("allow.raw_sockets"), "allow.noraw_sockets");
        assert_eq!(no_name("allow.mount.devfs"), "allow.mount.nodevfs");
        assert_eq!(no_name("persist"), "nopersist");
    }

    #[cfg(feature = "freebsd-integration")]
    #[test]
    fn kernel_types_of_the_default_parameters() {
        // Every default must be known to the kernel and typed as expected.
        assert!(
            matches!(typed("allow.raw_sockets", "0"), Ok((n, Value::Int(1))) if n == "allow.noraw_sockets")
        );
        assert!(matches!(typed("allow.mount", "1"), Ok((n, Value::Int(1))) if n == "allow.mount"));
        assert!(matches!(typed("securelevel", "2"), Ok((_, Value::Int(2)))));
        assert!(matches!(
            typed("host.hostname", "a"),
            Ok((_, Value::String(_)))
        ));
        assert!(matches!(
            typed("ip4.addr", "172.23.0.5"),
            Ok((_, Value::Ipv4Addrs(_)))
        ));
        assert!(matches!(typed("ip4", "new"), Ok((_, Value::Int(1)))));
        assert!(typed("no.such.param", "1").is_err());
        assert!(typed("securelevel", "high").is_err());
    }
}
