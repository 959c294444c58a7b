//! A FreeBSD pod with a network stack of its own (VNET), as an instance
//! pod needs: its tap, gateway address and pf rules live in the jail's
//! stack, so every instance pod can use 10.0.0.0/24. Pure: the interface
//! names, MAC addresses and ifconfig/route/arp argument vectors, tested on
//! any host; the FreeBSD driver runs them.
//!
//! The link is an epair: the host's end stays on the host, the pod's end
//! moves into the jail with the pod's address. Routed, not bridged: the
//! host reaches the pod by a host route on its end, the pod reaches the
//! host's address of the pod range (which `jail.interface` carries, as for
//! every pod) by a host route on its end, and each side has the other's
//! MAC as a static ARP entry, so neither end needs an address of the other's
//! network. The pod's traffic thus comes from its own address, as a pod
//! without VNET's does, and the host tells pods apart by source.

use std::net::Ipv4Addr;

use super::{CellSpec, Device};
use crate::config::Ipv4Net;

/// Whether a cell gets a network stack of its own on FreeBSD: a pod made
/// with `--vnet`, and one given the tun/tap device (it makes its tap and
/// pf rules inside the jail).
pub fn has_own_stack(spec: &CellSpec) -> bool {
    spec.vnet || spec.devices.contains(&Device::Tun)
}

/// The epair of a VNET pod, named and addressed from the pod's address
/// (unique among live pods, so a destroy finds the link again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetLink {
    pub host_end: String,
    pub pod_end: String,
    host_mac: String,
    pod_mac: String,
    pod: Ipv4Addr,
    host: Ipv4Addr,
}

impl VnetLink {
    pub fn of(spec: &CellSpec) -> VnetLink {
        VnetLink::for_address(spec.address, spec.network)
    }

    /// The link of the pod at `pod` in `network` (a destroy has no spec).
    pub fn for_address(pod: Ipv4Addr, network: Ipv4Net) -> VnetLink {
        let id = u32::from(pod);
        let [_, b, c, d] = pod.octets();
        VnetLink {
            // 12 characters: interface names hold 15.
            host_end: host_end_of(pod),
            pod_end: format!("jpe{id:08x}b"),
            // Locally administered unicast, one per end.
            host_mac: format!("02:6a:70:{b:02x}:{c:02x}:{d:02x}"),
            pod_mac: format!("06:6a:70:{b:02x}:{c:02x}:{d:02x}"),
            pod,
            host: network.host(),
        }
    }

    /// Host side, once `ifconfig epair create` printed `created` (its `a`
    /// end) and jail `jail` exists: name both ends, give them their MACs,
    /// move the pod's end into the jail, route and resolve the pod.
    pub fn host_argvs(&self, created: &str, jail: &str) -> Vec<Vec<String>> {
        let created_b = format!("{}b", created.trim_end_matches('a'));
        let pod = self.pod.to_string();
        argvs(&[
            &["ifconfig", created, "name", &self.host_end],
            &["ifconfig", &created_b, "name", &self.pod_end],
            &["ifconfig", &self.host_end, "ether", &self.host_mac, "up"],
            &["ifconfig", &self.pod_end, "ether", &self.pod_mac],
            &["ifconfig", &self.pod_end, "vnet", jail],
            &[
                "route",
                "-q",
                "add",
                "-host",
                &pod,
                "-iface",
                &self.host_end,
            ],
            &["arp", "-s", &pod, &self.pod_mac],
        ])
    }

    /// In the jail: loopback, the pod's address on its end, the host as
    /// neighbour and default gateway.
    pub fn pod_argvs(&self) -> Vec<Vec<String>> {
        let pod = format!("{}/32", self.pod);
        let host = self.host.to_string();
        argvs(&[
            &["ifconfig", "lo0", "inet", "127.0.0.1/8", "up"],
            &["ifconfig", &self.pod_end, "inet", &pod, "up"],
            &[
                "route",
                "-q",
                "add",
                "-host",
                &host,
                "-iface",
                &self.pod_end,
            ],
            &["arp", "-s", &host, &self.host_mac],
            &["route", "-q", "add", "default", &host],
        ])
    }

    /// Destroys both ends (the pod's end comes back to the host when its
    /// jail goes; the route and ARP entries go with the interfaces).
    pub fn destroy_argv(&self) -> Vec<String> {
        argvs(&[&["ifconfig", &self.host_end, "destroy"]]).remove(0)
    }
}

/// The host's end of the link of the pod at `pod`: what a destroy, which
/// has no spec, looks for.
pub fn host_end_of(pod: Ipv4Addr) -> String {
    format!("jpe{:08x}a", u32::from(pod))
}

/// The `a` end that `ifconfig epair create` printed.
pub fn created_end(stdout: &str) -> Option<&str> {
    let name = stdout.trim();
    (name.starts_with("epair")
        && name.ends_with('a')
        && name.len() <= 15
        && name.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then_some(name)
}

fn argvs(lists: &[&[&str]]) -> Vec<Vec<String>> {
    lists
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(devices: Vec<Device>) -> CellSpec {
        CellSpec {
            name: "jetpack-p1".into(),
            hostname: "p1".into(),
            root: "/var/jetpack/pods/p1".into(),
            address: Ipv4Addr::new(172, 23, 0, 5),
            network: Ipv4Net::parse("172.23.0.0/24").unwrap(),
            interface: "lo1".into(),
            securelevel: 2,
            devfs_ruleset: 4,
            linux_abi: false,
            params: vec![],
            devices,
            volumes: Vec::new(),
            limits: Default::default(),
            vnet: false,
        }
    }

    #[test]
    fn only_a_cell_with_the_tap_device_has_its_own_stack() {
        assert!(has_own_stack(&spec(vec![Device::Tun, Device::Kvm])));
        assert!(!has_own_stack(&spec(vec![Device::Kvm])));
        assert!(!has_own_stack(&spec(vec![])));
        let asked = CellSpec {
            vnet: true,
            ..spec(vec![])
        };
        assert!(has_own_stack(&asked));
    }

    #[test]
    fn the_link_is_named_and_routed_from_the_pod_address() {
        let link = VnetLink::of(&spec(vec![Device::Tun]));
        assert_eq!(link.host_end, "jpeac170005a");
        assert_eq!(link.pod_end, "jpeac170005b");
        let host = link.host_argvs("epair3a", "jetpack-p1");
        assert_eq!(host[0], ["ifconfig", "epair3a", "name", "jpeac170005a"]);
        assert_eq!(host[1], ["ifconfig", "epair3b", "name", "jpeac170005b"]);
        assert_eq!(host[4], ["ifconfig", "jpeac170005b", "vnet", "jetpack-p1"]);
        assert_eq!(
            host[5],
            [
                "route",
                "-q",
                "add",
                "-host",
                "172.23.0.5",
                "-iface",
                "jpeac170005a"
            ]
        );
        assert_eq!(host[6], ["arp", "-s", "172.23.0.5", "06:6a:70:17:00:05"]);
        let pod = link.pod_argvs();
        assert_eq!(
            pod[1],
            ["ifconfig", "jpeac170005b", "inet", "172.23.0.5/32", "up"]
        );
        assert_eq!(pod[3], ["arp", "-s", "172.23.0.1", "02:6a:70:17:00:05"]);
        assert_eq!(pod[4], ["route", "-q", "add", "default", "172.23.0.1"]);
        assert_eq!(link.destroy_argv(), ["ifconfig", "jpeac170005a", "destroy"]);
    }

    #[test]
    fn only_an_epair_name_is_taken_from_ifconfig() {
        assert_eq!(created_end("epair12a\n"), Some("epair12a"));
        for bad in ["", "epair12b", "lo1", "epair1a; rm", "epair0123456789a"] {
            assert_eq!(created_end(bad), None, "{bad}");
        }
    }
}
