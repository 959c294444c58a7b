//! The cell's network: the host bridge `jail.interface` holding the first
//! address of the pod range, a veth pair per cell (the host end on the
//! bridge, the pod end made inside the cell's network namespace as eth0,
//! with a MAC derived from its address) and the pod's address and default
//! route, set through `ip -batch`.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::{setns, CloneFlags};

use super::Holder;
use crate::config::Ipv4Net;
use crate::runtime::jails::{sys_err, CellSpec, JailError};
use crate::runtime::tool;

/// Joins a new cell to the host bridge: the bridge made if need be, a veth
/// pair whose pod end is created directly inside the cell's network
/// namespace, then the pod's loopback, address and default route set
/// from inside that namespace.
pub(super) fn connect(spec: &CellSpec, holder: &Holder) -> Result<(), JailError> {
    let pid = holder.pid;
    ensure_bridge(&spec.interface, spec.network)?;
    // A fresh name per start: the pair of the pod's previous run may
    // still exist while the kernel tears its namespace down.
    let veth = format!("jp{}", &uuid::Uuid::new_v4().simple().to_string()[..11]);
    ip_batch(
        &format!(
            "link add {veth} type veth peer name eth0 address {} netns {pid}\nlink set {veth} master {} up\n",
            pod_mac(spec.address),
            spec.interface
        ),
        None,
    )?;
    ip_batch(
        &format!(
            "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\nroute add default via {}\n",
            spec.address,
            spec.network.prefix,
            spec.network.host()
        ),
        Some(&holder.ns("net")?),
    )
}

fn ip_batch(commands: &str, netns: Option<&File>) -> Result<(), JailError> {
    let mut cmd = Command::new("ip");
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ns) = netns {
        let fd = ns.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the fd stays open until spawn.
        unsafe {
            cmd.pre_exec(move || {
                setns(
                    std::os::fd::BorrowedFd::borrow_raw(fd),
                    CloneFlags::CLONE_NEWNET,
                )?;
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| tool::ToolError::Spawn {
        program: "ip".into(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(commands.as_bytes())
            .map_err(sys_err("writing to ip -batch"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(sys_err("waiting for ip"))?;
    if !out.status.success() {
        return Err(JailError::Network(tool::ToolError::Failed {
            command: format!("ip -batch: {}", commands.trim().replace('\n', "; ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }));
    }
    Ok(())
}

/// The MAC of a pod's eth0, derived from its address (locally administered,
/// as Docker does): a pod started again with the same address keeps its MAC,
/// so the host's ARP entry for it stays right. A random MAC would leave the
/// host sending to the previous run's MAC until that entry expired.
fn pod_mac(address: std::net::Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("02:6a:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Whether `bridge` is up with `address` on it, asked of the kernel
/// directly (getifaddrs) so that the common case spawns nothing.
fn bridge_ready(bridge: &str, address: std::net::Ipv4Addr) -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs.into_iter().any(|a| {
        a.interface_name == bridge
            && a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP)
            && a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .is_some_and(|sin| sin.ip() == address)
    })
}

/// Makes the host bridge with the range's first address; idempotent and
/// safe against a concurrent creator.
pub(super) fn ensure_bridge(bridge: &str, network: Ipv4Net) -> Result<(), JailError> {
    if bridge_ready(bridge, network.host()) {
        return Ok(());
    }
    if !Path::new("/sys/class/net").join(bridge).exists() {
        match tool::run("ip", &["link", "add", bridge, "type", "bridge"]) {
            Ok(_) => {}
            Err(e) if e.stderr().contains("File exists") => {}
            Err(e) => return Err(e.into()),
        }
    }
    let host = format!("{}/{}", network.host(), network.prefix);
    match tool::run("ip", &["addr", "add", &host, "dev", bridge]) {
        Ok(_) => {}
        Err(e) if e.stderr().contains("exists") => {}
        Err(e) => return Err(e.into()),
    }
    tool::run("ip", &["link", "set", bridge, "up"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_macs_follow_addresses() {
        assert_eq!(pod_mac("10.200.1.2".parse().unwrap()), "02:6a:0a:c8:01:02");
        assert_ne!(
            pod_mac("10.200.1.2".parse().unwrap()),
            pod_mac("10.200.1.3".parse().unwrap())
        );
    }
}
