//! The cell's network: the host bridge `jail.interface` holding the first
//! address of the pod range, a veth pair per cell (the host end on the
//! bridge, the pod end made inside the cell's network namespace as eth0,
//! with a MAC derived from its address) and the pod's address and default
//! route, all set through rtnetlink (`netlink`): no `ip` process on the
//! way, which cost a pod start two process spawns (~17 ms of ~60).

use std::net::Ipv4Addr;

use super::netlink::{self, Netlink};
use super::Holder;
use crate::config::Ipv4Net;
use crate::runtime::jails::{CellSpec, JailError};

/// The name of the pod's end of its veth pair, inside its namespace.
const POD_LINK: &str = "eth0";

/// A failed netlink request as a JailError: the operation (with its
/// interface) and the kernel's errno.
fn failed(what: String) -> impl FnOnce(std::io::Error) -> JailError {
    move |source| JailError::Sys {
        what: format!("pod network: {what}"),
        source,
    }
}

/// Joins a new cell to the host bridge: the bridge made if need be, a veth
/// pair whose pod end is created directly inside the cell's network
/// namespace, then the pod's loopback, address and default route set
/// from inside that namespace.
pub(super) fn connect(spec: &CellSpec, holder: &Holder) -> Result<(), JailError> {
    let bridge = bridge_index(&spec.interface, spec.network)?;
    // A fresh name per start: the pair of the pod's previous run may
    // still exist while the kernel tears its namespace down.
    let veth = format!("jp{}", &uuid::Uuid::new_v4().simple().to_string()[..11]);
    let pid = u32::try_from(holder.pid).map_err(|_| JailError::BadHandle(holder.cell().0))?;
    let mut host = Netlink::open().map_err(failed("opening a netlink socket".into()))?;
    host.create_link(netlink::veth(
        &veth,
        bridge,
        POD_LINK,
        pod_mac(spec.address),
        pid,
    ))
    .map_err(failed(format!(
        "creating veth {veth} on {} with peer {POD_LINK} in the namespace of pid {pid}",
        spec.interface
    )))?;
    let mut pod = Netlink::open_in(&holder.ns("net")?).map_err(failed(format!(
        "opening a netlink socket in the namespace of pid {pid}"
    )))?;
    pod.set_up("lo")
        .map_err(failed(format!("setting lo up in pod {}", spec.name)))?;
    let eth0 = pod
        .link_index(POD_LINK)
        .map_err(failed(format!("finding {POD_LINK} in pod {}", spec.name)))?;
    pod.add_address(eth0, spec.address, spec.network.prefix)
        .map_err(failed(format!(
            "adding {}/{} to {POD_LINK} in pod {}",
            spec.address, spec.network.prefix, spec.name
        )))?;
    pod.set_up(POD_LINK).map_err(failed(format!(
        "setting {POD_LINK} up in pod {}",
        spec.name
    )))?;
    pod.add_default_route(spec.network.host())
        .map_err(failed(format!(
            "adding the default route via {} in pod {}",
            spec.network.host(),
            spec.name
        )))
}

/// The MAC of a pod's eth0, derived from its address (locally administered,
/// as Docker does): a pod started again with the same address keeps its MAC,
/// so the host's ARP entry for it stays right. A random MAC would leave the
/// host sending to the previous run's MAC until that entry expired.
fn pod_mac(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x6a, a, b, c, d]
}

/// Whether `bridge` is up with `address` on it, asked of the kernel
/// directly (getifaddrs) so that the common case spawns nothing.
fn bridge_ready(bridge: &str, address: Ipv4Addr) -> bool {
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
    bridge_index(bridge, network).map(drop)
}

/// The host bridge's index, the bridge made first if need be (up, with
/// the range's first address). A concurrent creator's EEXIST, for the
/// bridge or its address, is success.
fn bridge_index(bridge: &str, network: Ipv4Net) -> Result<u32, JailError> {
    let ready = bridge_ready(bridge, network.host());
    if ready {
        // The common case asks nothing of netlink: if_nametoindex is one
        // ioctl in this (the host's) namespace.
        if let Ok(index) = nix::net::if_::if_nametoindex(bridge) {
            return Ok(index);
        }
    }
    let mut host = Netlink::open().map_err(failed("opening a netlink socket".into()))?;
    let tolerate_exists = |result: std::io::Result<()>| match result {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    };
    tolerate_exists(host.create_link(netlink::bridge(bridge)))
        .map_err(failed(format!("creating bridge {bridge}")))?;
    let index = host
        .link_index(bridge)
        .map_err(failed(format!("finding bridge {bridge}")))?;
    tolerate_exists(host.add_address(index, network.host(), network.prefix)).map_err(failed(
        format!(
            "adding {}/{} to bridge {bridge}",
            network.host(),
            network.prefix
        ),
    ))?;
    host.set_up(bridge)
        .map_err(failed(format!("setting bridge {bridge} up")))?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_macs_follow_addresses() {
        assert_eq!(
            pod_mac("10.200.1.2".parse().unwrap()),
            [0x02, 0x6a, 0x0a, 0xc8, 0x01, 0x02]
        );
        assert_ne!(
            pod_mac("10.200.1.2".parse().unwrap()),
            pod_mac("10.200.1.3".parse().unwrap())
        );
    }
}
