//! The host's side of a cell's network: `jail.interface` (lo1 by default)
//! made to exist with the host's address of the pod range, and each pod's
//! address as a /32 alias on it, added at create and removed at destroy
//! unless another live jail has it; or, for a pod with a stack of its own
//! (VNET), its epair (`jails::vnet`), made after the jail and destroyed
//! with it.

use std::io;
use std::net::Ipv4Addr;

use jail::param::Value;
use jail::RunningJail;

use crate::config::Ipv4Net;
use crate::runtime::jails::vnet::{created_end, host_end_of, VnetLink};
use crate::runtime::jails::{sys_err, CellSpec, JailError};
use crate::runtime::tool;

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
pub(super) fn ensure_interface(iface: &str, network: Ipv4Net) -> Result<(), JailError> {
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

pub(super) fn add_alias(iface: &str, address: Ipv4Addr) -> Result<(), JailError> {
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
pub(super) fn remove_alias(address: Ipv4Addr, own_name: &str) -> Result<(), JailError> {
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

/// Makes the epair of VNET jail `jid` (named `jail`) and its routes, on
/// the host and inside; on failure nothing of it stays.
pub(super) fn make_vnet_link(spec: &CellSpec, jid: i32) -> Result<(), JailError> {
    let link = VnetLink::of(spec);
    // One left by a crashed create or destroy of the same address.
    let _ = tool::run(&link.destroy_argv()[0], &link.destroy_argv()[1..]);
    let out = tool::run("ifconfig", &["epair", "create"])?;
    let created = created_end(&out).ok_or_else(|| JailError::Create {
        name: spec.name.clone(),
        why: format!("ifconfig epair create printed {:?}", out.trim()),
    })?;
    let made = (|| {
        for argv in link.host_argvs(created, &spec.name) {
            tool::run(&argv[0], &argv[1..])?;
        }
        for argv in link.pod_argvs() {
            let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
            super::instance_net::run_in(jid, &argv[0], &args, "")?;
        }
        Ok(())
    })();
    if made.is_err() {
        // Under its new name or still the created one.
        let _ = tool::run(&link.destroy_argv()[0], &link.destroy_argv()[1..]);
        let _ = tool::run("ifconfig", &[created, "destroy"]);
    }
    made
}

/// Destroys the epair of a VNET pod at `address`, if there is one.
pub(super) fn remove_vnet_link(address: Ipv4Addr) -> Result<(), JailError> {
    let host_end = host_end_of(address);
    let all = interfaces().map_err(sys_err("listing interfaces"))?;
    if !all.iter().any(|(name, _)| *name == host_end) {
        return Ok(());
    }
    tool::run("ifconfig", &[host_end.as_str(), "destroy"])?;
    Ok(())
}
