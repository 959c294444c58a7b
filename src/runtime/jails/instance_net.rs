//! An instance network: what a launched instance's pod adds to its cell so
//! that the unikernel under the hypervisor has a network. A tap inside the
//! cell carries the gateway address IncludeOS images are built to use
//! (10.0.0.1/24), the guest takes 10.0.0.42, the pod NATs the guest's
//! traffic out of its own interface and forwards chosen ports of its own
//! address to the guest. Every pod has the same private network: it lives
//! in the pod's own network stack, so pods never see each other's.
//!
//! This file holds the description and its validation, shared by the
//! drivers (`linux::instance_net`, `freebsd::instance_net`), which apply it
//! through `Jails::attach_instance_net`.

use std::net::Ipv4Addr;

use crate::config::Ipv4Net;
pub use crate::net::publish::Proto;

/// The tap a launched instance's hypervisor attaches to, unless the
/// launcher names another.
pub const DEFAULT_TAP: &str = "tap0";
/// The network IncludeOS images assume: their default gateway is its
/// first address.
pub const DEFAULT_NETWORK: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 0, 0, 0),
    prefix: 24,
};
pub const DEFAULT_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The address IncludeOS images configure statically when DHCP is off.
pub const DEFAULT_GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 42);

/// A port of the pod's address forwarded (DNAT) to the same port of the
/// guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Forward {
    pub proto: Proto,
    pub port: u16,
}

/// The network of a launched instance inside its pod.
///
/// The gateway is split into `network` and `gateway` rather than one
/// `10.0.0.1/24` value: `Ipv4Net` (config's type, with its serde form)
/// refuses host bits, which is right for the pod range and would refuse
/// the gateway's CIDR form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct InstanceNet {
    /// The tap's name inside the pod, 1-15 of [A-Za-z0-9_.-].
    pub tap: String,
    /// The guest's network (the tap's prefix).
    pub network: Ipv4Net,
    /// The tap's address: the guest's default gateway.
    pub gateway: Ipv4Addr,
    pub guest: Ipv4Addr,
    pub forwards: Vec<Forward>,
}

impl Default for InstanceNet {
    fn default() -> Self {
        InstanceNet {
            tap: DEFAULT_TAP.into(),
            network: DEFAULT_NETWORK,
            gateway: DEFAULT_GATEWAY,
            guest: DEFAULT_GUEST,
            forwards: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceNetError {
    #[error("tap name {0:?}: must be 1-15 characters of A-Z a-z 0-9 _ . -")]
    TapName(String),
    #[error("instance network {0}: host bits set or prefix not 8..=30")]
    Network(Ipv4Net),
    #[error("{what} {address} is not a host address of {network}")]
    Outside {
        what: &'static str,
        address: Ipv4Addr,
        network: Ipv4Net,
    },
    #[error("pod interface name {0:?} is not a valid interface name")]
    PodInterface(String),
    #[error("the guest address {0} is the gateway's")]
    GuestIsGateway(Ipv4Addr),
    #[error("instance network {instance} overlaps the pod network {pod}")]
    Overlap { instance: Ipv4Net, pod: Ipv4Net },
    #[error("port 0 cannot be forwarded")]
    ZeroPort,
    #[error("forward {proto} {port} is listed twice")]
    DuplicateForward { proto: Proto, port: u16 },
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// Whether `address` is a usable host address of `net` (not its network
/// or broadcast address).
fn is_host_of(net: Ipv4Net, address: Ipv4Addr) -> bool {
    let m = mask(net.prefix);
    let a = u32::from(address);
    let n = u32::from(net.addr);
    a & m == n && a != n && a != n | !m
}

/// Two networks overlap when one holds the other's network address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    let m = mask(a.prefix.min(b.prefix));
    u32::from(a.addr) & m == u32::from(b.addr) & m
}

/// Whether `name` may name an interface on both platforms: IFNAMSIZ-1
/// characters at most, and nothing a tool or a rule file would read as
/// syntax (which is what lets the rulesets interpolate it).
pub fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name != "."
        && name != ".."
}

impl InstanceNet {
    /// Checks everything a driver relies on, against the pod network the
    /// cell's own address is in (the instance network must not shadow it,
    /// or the pod could not reach the host).
    pub fn validate(&self, pod_network: Ipv4Net) -> Result<(), InstanceNetError> {
        if !valid_ifname(&self.tap) {
            return Err(InstanceNetError::TapName(self.tap.clone()));
        }
        let n = self.network;
        if !(8..=30).contains(&n.prefix) || u32::from(n.addr) & mask(n.prefix) != u32::from(n.addr)
        {
            return Err(InstanceNetError::Network(n));
        }
        for (what, address) in [("gateway", self.gateway), ("guest", self.guest)] {
            if !is_host_of(n, address) {
                return Err(InstanceNetError::Outside {
                    what,
                    address,
                    network: n,
                });
            }
        }
        if self.guest == self.gateway {
            return Err(InstanceNetError::GuestIsGateway(self.guest));
        }
        if overlaps(n, pod_network) {
            return Err(InstanceNetError::Overlap {
                instance: n,
                pod: pod_network,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.forwards {
            if f.port == 0 {
                return Err(InstanceNetError::ZeroPort);
            }
            if !seen.insert(*f) {
                return Err(InstanceNetError::DuplicateForward {
                    proto: f.proto,
                    port: f.port,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> Ipv4Net {
        Ipv4Net::parse("10.200.0.0/16").unwrap()
    }

    #[test]
    fn the_default_is_valid_and_is_what_includeos_expects() {
        let net = InstanceNet::default();
        net.validate(pods()).unwrap();
        assert_eq!(net.gateway.to_string(), "10.0.0.1");
        assert_eq!(net.network.to_string(), "10.0.0.0/24");
        assert_eq!(net.guest.to_string(), "10.0.0.42");
        assert_eq!(net.tap, "tap0");
    }

    #[test]
    fn tap_names_are_checked() {
        for bad in [
            "",
            "a-name-too-long16",
            "tap 0",
            "tap/0",
            "ta;p",
            "..",
            "täp",
        ] {
            let net = InstanceNet {
                tap: bad.into(),
                ..InstanceNet::default()
            };
            assert_eq!(
                net.validate(pods()),
                Err(InstanceNetError::TapName(bad.into())),
                "{bad:?}"
            );
        }
        for good in ["t", "tap_0.a-b", "a-name-of-15chr"] {
            let net = InstanceNet {
                tap: good.into(),
                ..InstanceNet::default()
            };
            assert_eq!(net.validate(pods()), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn addresses_must_be_hosts_of_the_network() {
        let with = |gateway: &str, guest: &str| InstanceNet {
            gateway: gateway.parse().unwrap(),
            guest: guest.parse().unwrap(),
            ..InstanceNet::default()
        };
        for (gw, guest, what) in [
            ("10.0.0.1", "10.0.0.0", "guest"),
            ("10.0.0.1", "10.0.0.255", "guest"),
            ("10.0.0.1", "10.0.1.42", "guest"),
            ("10.0.0.0", "10.0.0.42", "gateway"),
            ("192.168.0.1", "10.0.0.42", "gateway"),
        ] {
            match with(gw, guest).validate(pods()) {
                Err(InstanceNetError::Outside { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{gw} {guest}: {other:?}"),
            }
        }
        assert_eq!(
            with("10.0.0.1", "10.0.0.1").validate(pods()),
            Err(InstanceNetError::GuestIsGateway(
                "10.0.0.1".parse().unwrap()
            ))
        );
        let mut host_bits = InstanceNet::default();
        host_bits.network.addr = "10.0.0.1".parse().unwrap();
        assert!(matches!(
            host_bits.validate(pods()),
            Err(InstanceNetError::Network(_))
        ));
    }

    #[test]
    fn the_instance_network_must_not_overlap_the_pods() {
        for pod in ["10.0.0.0/8", "10.0.0.0/24", "10.0.0.128/25"] {
            let pod = Ipv4Net::parse(pod).unwrap();
            assert!(matches!(
                InstanceNet::default().validate(pod),
                Err(InstanceNetError::Overlap { .. })
            ));
        }
        assert_eq!(
            InstanceNet::default().validate(Ipv4Net::parse("10.0.1.0/24").unwrap()),
            Ok(())
        );
    }

    #[test]
    fn forwards_are_nonzero_and_distinct() {
        let with = |forwards: Vec<Forward>| InstanceNet {
            forwards,
            ..InstanceNet::default()
        };
        let tcp80 = Forward {
            proto: Proto::Tcp,
            port: 80,
        };
        let udp80 = Forward {
            proto: Proto::Udp,
            port: 80,
        };
        assert_eq!(with(vec![tcp80, udp80]).validate(pods()), Ok(()));
        assert!(matches!(
            with(vec![tcp80, tcp80]).validate(pods()),
            Err(InstanceNetError::DuplicateForward { port: 80, .. })
        ));
        assert_eq!(
            with(vec![Forward {
                proto: Proto::Tcp,
                port: 0
            }])
            .validate(pods()),
            Err(InstanceNetError::ZeroPort)
        );
    }

    #[test]
    fn serde_round_trips_with_defaults_for_missing_fields() {
        let net: InstanceNet =
            serde_json::from_str(r#"{"forwards":[{"proto":"udp","port":53}]}"#).unwrap();
        assert_eq!(net.tap, DEFAULT_TAP);
        assert_eq!(net.guest, DEFAULT_GUEST);
        assert_eq!(
            net.forwards,
            vec![Forward {
                proto: Proto::Udp,
                port: 53
            }]
        );
        let back: InstanceNet =
            serde_json::from_str(&serde_json::to_string(&net).unwrap()).unwrap();
        assert_eq!(back, net);
    }
}
