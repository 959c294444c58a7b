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
//!
//! This file owns the driver and its handle; the rest is one file per
//! concern: `params` (jail.conf-style strings typed for jail_set(2) by the
//! kernel's own description), `mounts` (devfs and the Linux ABI's file
//! systems in the root, and their removal), `net` (`jail.interface` and
//! the pods' address aliases on it) and `attach` (entering a jail from a
//! forked child, signalling its processes).

mod attach;
mod instance_net;
mod mounts;
mod net;
mod params;

use crate::runtime::limits::rctl::Rctl;
use crate::runtime::limits::LimitsBackend;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use jail::param::Value;
use jail::RunningJail;

use super::{vnet, Cell, CellSpec, JailError, Jails, Process, POLL};
use crate::config::Ipv4Net;
use crate::runtime::undo::Undo;
use attach::{attach, signal_jail};
use mounts::{mount_cell, unmount_cell};
use net::{add_alias, ensure_interface, make_vnet_link, remove_alias, remove_vnet_link};
use params::stopped_jail;

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

        // Each effect pushes its inverse; a failed inverse is logged with
        // the cause and named in the error (`runtime::undo`).
        let mut undo = Undo::new();
        let own_stack = vnet::has_own_stack(spec);
        let started = (|| {
            if !own_stack {
                add_alias(&spec.interface, spec.address)?;
                undo.push_with(format!("address alias {}", spec.address), || {
                    remove_alias(spec.address, &spec.name)
                });
            }
            mount_cell(spec).map_err(fail)?;
            undo.push_with(format!("mounts under {}", spec.root.display()), || {
                unmount_cell(&spec.root)
            });
            let jail = stopped.start().map_err(|e| fail(e.to_string()))?;
            // rctl rules name a jail that exists; nothing runs in it yet.
            if spec.limits.needs_backend() {
                if let Err(e) = Rctl.apply(&spec.name, &spec.limits) {
                    let _ = jail.kill();
                    return Err(JailError::Limits {
                        name: spec.name.clone(),
                        source: e,
                    });
                }
            }
            if own_stack {
                // The epair's pod end lives in the jail's stack: the jail
                // must exist first, and goes if the link cannot be made.
                if let Err(e) = make_vnet_link(spec, jail.jid) {
                    let _ = jail.kill();
                    return Err(e);
                }
            }
            Ok(jail)
        })();
        match started {
            Ok(jail) => {
                undo.commit();
                Ok(Handle {
                    name: spec.name.clone(),
                    jid: jail.jid,
                    address: Some(spec.address),
                    root: spec.root.clone(),
                }
                .cell())
            }
            Err(e) => {
                let left = undo.unwind_left(&e);
                Err(if left.0.is_empty() {
                    e
                } else {
                    // JailError has no variant of its own for this: the
                    // cell was not made, so it is a failed create.
                    let why = match e {
                        JailError::Create { why, .. } => why,
                        other => other.to_string(),
                    };
                    fail(format!("{why} (and left behind: {left})"))
                })
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

    fn usage(&self, cell: &Cell) -> Option<crate::runtime::limits::Usage> {
        let handle = Handle::parse(cell).ok()?;
        Rctl.usage(&handle.name).ok().flatten()
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
        // The jail crate clears the jail's rctl rules too; a jail that had
        // none (or a host without racct) makes this fail harmlessly.
        if let Err(e) = Rctl.remove(&handle.name) {
            tracing::debug!("rctl rules of jail {}: {e}", handle.name);
        }
        unmount_cell(&handle.root)?;
        if let Some(address) = handle.address {
            remove_vnet_link(address)?;
            remove_alias(address, &handle.name)?;
        }
        Ok(())
    }

    fn attach_instance_net(
        &self,
        cell: &Cell,
        spec: &CellSpec,
        net: &super::instance_net::InstanceNet,
    ) -> Result<(), JailError> {
        let handle = Handle::parse(cell)?;
        let jail = handle
            .running()
            .ok_or_else(|| JailError::NotRunning(handle.name.clone()))?;
        instance_net::attach_in(jail.jid, spec, net)
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
}
