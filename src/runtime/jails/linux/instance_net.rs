//! The instance network of a Linux cell (`Jails::attach_instance_net`):
//! inside the cell's network namespace, a persistent tap with the gateway
//! address, IPv4 forwarding, and an nftables table of jetpack's own that
//! masquerades the guest's network out of the pod's interface and DNATs
//! the forwarded ports of the pod's address to the guest.
//!
//! The tap is made persistent and owned by uid 0 because the hypervisor
//! runs as the pod's root without CAP_NET_ADMIN (`KEPT_CAPS` drops it):
//! the kernel lets a process without it attach to an existing tap only
//! when the tap's owner (or group) is the process's. Attaching is then
//! what qemu's `-netdev tap,ifname=TAP,script=no,downscript=no` does.
//!
//! Every step acts from a thread or child that has entered the namespace
//! (setns(2) is per thread), so the host's settings are never touched.

use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{setns, CloneFlags};

use super::netlink::Netlink;
use crate::config::Ipv4Net;
use crate::runtime::jails::instance_net::{valid_ifname, InstanceNet, InstanceNetError, Proto};
use crate::runtime::jails::JailError;

/// The pod's own interface inside its namespace: `net::POD_LINK`, which
/// `net` keeps private.
pub const POD_LINK: &str = "eth0";

/// The nftables table jetpack owns inside a pod's namespace.
pub const NFT_TABLE: &str = "jetpack";

/// The pod side an instance network attaches to.
#[derive(Debug, Clone, Copy)]
pub struct PodSide<'a> {
    /// The pod's address, the one forwards are DNAT'd from.
    pub address: Ipv4Addr,
    /// The pod range, which the instance network must not overlap.
    pub network: Ipv4Net,
    /// The pod's interface, the one the guest's traffic leaves by.
    pub interface: &'a str,
}

fn failed(what: String) -> impl FnOnce(io::Error) -> JailError {
    move |source| JailError::Sys {
        what: format!("instance network: {what}"),
        source,
    }
}

/// Runs `f` on a thread that entered `netns` first; the caller's threads
/// never change namespace.
fn in_netns<T: Send>(netns: &File, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let fd = netns.as_fd();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Applies `net` in the network namespace `netns` (a /proc/PID/ns/net
/// file): the tap, its address, forwarding, the nftables table. Applying
/// it again converges: the tap is kept (even while a hypervisor holds it),
/// the address kept, the table replaced whole.
pub fn attach_in(netns: &File, pod: PodSide<'_>, net: &InstanceNet) -> Result<(), JailError> {
    net.validate(pod.network)?;
    if !valid_ifname(pod.interface) {
        return Err(InstanceNetError::PodInterface(pod.interface.into()).into());
    }
    in_netns(netns, || make_tap(&net.tap)).map_err(failed(format!("creating tap {}", net.tap)))?;
    let mut nl = Netlink::open_in(netns).map_err(failed("opening a netlink socket".into()))?;
    let index = nl
        .link_index(&net.tap)
        .map_err(failed(format!("finding tap {}", net.tap)))?;
    match nl.add_address(index, net.gateway, net.network.prefix) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
            return Err(failed(format!(
                "adding {}/{} to {}",
                net.gateway, net.network.prefix, net.tap
            ))(e))
        }
        _ => {}
    }
    nl.set_up(&net.tap)
        .map_err(failed(format!("setting {} up", net.tap)))?;
    in_netns(netns, enable_forwarding).map_err(failed("enabling ip_forward".into()))?;
    load_nft(netns, &nft_ruleset(pod, net))
}

/// Makes the persistent tap `name` (or keeps it): created in the calling
/// thread's namespace, owned by uid 0 so that the pod's root may attach
/// without CAP_NET_ADMIN.
fn make_tap(name: &str) -> io::Result<()> {
    // qemu probes IFF_VNET_HDR itself; the kernel takes the offload flags
    // from whoever attaches, so creating without them is what any later
    // attach can use. Only IFF_MULTI_QUEUE must match later attaches, and
    // qemu's single queue is the default.
    let tun = match tun_set_iff(name, libc::IFF_TAP | libc::IFF_NO_PI) {
        Ok(fd) => fd,
        // The tap exists and a hypervisor holds it: it is already what
        // an earlier attach made.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
        Err(e) => return Err(e),
    };
    // SAFETY: plain ioctls on a descriptor we own, with integer arguments.
    unsafe {
        if libc::ioctl(tun.as_raw_fd(), libc::TUNSETOWNER, 0 as libc::c_ulong) != 0
            || libc::ioctl(tun.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Opens /dev/net/tun and attaches it to tap `name` with `flags`, creating
/// the tap (in the calling thread's network namespace) if it does not
/// exist and the caller may: what a hypervisor's tap backend does.
pub fn tun_set_iff(name: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
    // SAFETY: open with a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.bytes().any(|b| b == 0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the ifreq we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sets net.ipv4.ip_forward in the calling thread's network namespace:
/// /proc/sys/net resolves to the namespace of whoever opens it.
fn enable_forwarding() -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/net/ipv4/ip_forward")?
        .write_all(b"1\n")
}

/// Loads `ruleset` with `nft -f -` from a child that entered `netns`.
fn load_nft(netns: &File, ruleset: &str) -> Result<(), JailError> {
    let fd = netns
        .as_fd()
        .try_clone_to_owned()
        .map_err(failed("nft".into()))?;
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]);
    // SAFETY: setns is async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(move || {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            Ok(())
        });
    }
    crate::runtime::tool::run_command(cmd, "nft -f - (in the pod)", ruleset)?;
    Ok(())
}

/// The nftables script for `net` behind `pod`: one transaction that
/// replaces jetpack's table whole (declared first so that the delete
/// never fails), with
/// - prerouting: each forward from the pod's address to the guest;
/// - output: the same for connections made inside the pod itself;
/// - postrouting: the guest's network masqueraded out of the pod's
///   interface;
/// - forward: accepting the guest's traffic out and DNAT'd traffic in
///   (policy accept: the pod's namespace has no other filter, and the
///   explicit rules say what the table is for).
///
/// Every interpolated value is typed or validated (`InstanceNet::validate`
/// allows only [A-Za-z0-9_.-] in the tap name; the pod interface is
/// checked the same way by `attach_in`).
pub fn nft_ruleset(pod: PodSide<'_>, net: &InstanceNet) -> String {
    let t = NFT_TABLE;
    let mut dnat = String::new();
    for f in &net.forwards {
        let proto = match f.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        let _ = writeln!(
            dnat,
            "\t\tip daddr {} {proto} dport {} dnat to {}:{}",
            pod.address, f.port, net.guest, f.port
        );
    }
    format!(
        "table ip {t}\n\
         delete table ip {t}\n\
         table ip {t} {{\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         {dnat}\
         \t}}\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         {dnat}\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {network} oifname \"{out}\" masquerade\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"{tap}\" oifname \"{out}\" ip saddr {network} accept\n\
         \t\toifname \"{tap}\" ip daddr {guest} ct status dnat accept\n\
         \t}}\n\
         }}\n",
        network = net.network,
        out = pod.interface,
        tap = net.tap,
        guest = net.guest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::jails::instance_net::Forward;

    fn pod() -> PodSide<'static> {
        PodSide {
            address: "10.200.1.2".parse().unwrap(),
            network: Ipv4Net::parse("10.200.0.0/16").unwrap(),
            interface: POD_LINK,
        }
    }

    #[test]
    fn the_ruleset_replaces_the_table_and_nats_the_guest() {
        let text = nft_ruleset(pod(), &InstanceNet::default());
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(
            lines[..3],
            [
                "table ip jetpack",
                "delete table ip jetpack",
                "table ip jetpack {"
            ]
        );
        assert!(lines.contains(&"ip saddr 10.0.0.0/24 oifname \"eth0\" masquerade"));
        assert!(lines.contains(&"iifname \"tap0\" oifname \"eth0\" ip saddr 10.0.0.0/24 accept"));
        assert!(!text.contains("dnat to"), "no forwards, no DNAT:\n{text}");
        // Balanced braces: nft would refuse the file otherwise.
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn each_forward_is_dnatted_from_the_pod_address() {
        let net = InstanceNet {
            tap: "tapx".into(),
            forwards: vec![
                Forward {
                    proto: Proto::Tcp,
                    port: 80,
                },
                Forward {
                    proto: Proto::Udp,
                    port: 5353,
                },
            ],
            ..InstanceNet::default()
        };
        let text = nft_ruleset(pod(), &net);
        for rule in [
            "ip daddr 10.200.1.2 tcp dport 80 dnat to 10.0.0.42:80",
            "ip daddr 10.200.1.2 udp dport 5353 dnat to 10.0.0.42:5353",
        ] {
            // Once in prerouting, once in output.
            assert_eq!(text.matches(rule).count(), 2, "{rule} in:\n{text}");
        }
        assert!(text.contains("oifname \"tapx\" ip daddr 10.0.0.42 ct status dnat accept"));
    }

    #[test]
    fn invalid_nets_are_refused_before_anything_is_made() {
        let netns = File::open("/proc/self/ns/net").unwrap();
        let bad = InstanceNet {
            tap: "no spaces".into(),
            ..InstanceNet::default()
        };
        let err = attach_in(&netns, pod(), &bad).unwrap_err().to_string();
        assert!(err.contains("tap name"), "{err}");
    }
}
