//! The Linux instance network applied to a real network namespace (a
//! child `unshare --net cat`, standing in for a pod's holder), checked
//! from outside with ip(8), nft(8) and /proc; and a process without
//! CAP_NET_ADMIN, as a pod's hypervisor is, attaching to the tap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use jetpack::config::Ipv4Net;
use jetpack::runtime::jails::instance_net::{Forward, InstanceNet, Proto};
use jetpack::runtime::jails::linux::instance_net::{attach_in, tun_set_iff, PodSide, NFT_TABLE};

/// Root, /dev/net/tun and the tools the checks use.
fn available() -> bool {
    let check = || -> Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root".into());
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err("/dev/net/tun is missing".into());
        }
        for (tool, arg) in [("nft", "--version"), ("ip", "-V"), ("nsenter", "--version")] {
            Command::new(tool)
                .arg(arg)
                .output()
                .map_err(|e| format!("{tool}: {e}"))?;
        }
        Ok(())
    };
    common::facility("instance network (root, tun, nft)", check())
}

/// A network namespace held by a child for the test's length.
struct Netns {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Netns {
    fn new() -> Netns {
        let mut child = Command::new("unshare")
            .args(["--net", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // cat echoing a line proves unshare is done and the namespace is
        // the child's.
        stdin.write_all(b"ready\n").unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Netns {
            child,
            stdin: Some(stdin),
        }
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }

    fn file(&self) -> File {
        File::open(self.path()).unwrap()
    }

    /// `argv` run inside the namespace; its stdout.
    fn run(&self, argv: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .args(argv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // cat ends at end of input; the kill is for a test that panicked
        // with cat blocked on a full pipe.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pod() -> PodSide<'static> {
    PodSide {
        address: "10.200.7.9".parse().unwrap(),
        network: Ipv4Net::parse("10.200.0.0/16").unwrap(),
        interface: "eth0",
    }
}

fn net() -> InstanceNet {
    InstanceNet {
        forwards: vec![
            Forward {
                proto: Proto::Tcp,
                port: 8080,
            },
            Forward {
                proto: Proto::Udp,
                port: 53,
            },
        ],
        ..InstanceNet::default()
    }
}

/// The tap's IPv4 addresses and whether it is administratively up.
fn tap_state(ns: &Netns, tap: &str) -> (Vec<String>, bool) {
    let json: serde_json::Value =
        serde_json::from_str(&ns.run(&["ip", "-j", "addr", "show", "dev", tap])).unwrap();
    let link = &json[0];
    let up = link["flags"].as_array().unwrap().iter().any(|f| f == "UP");
    let addrs = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (addrs, up)
}

fn host_ip_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap()
}

#[test]
fn the_instance_network_is_made_inside_the_namespace_only() {
    if !available() {
        return;
    }
    let ns = Netns::new();
    let host_before = host_ip_forward();
    assert_eq!(
        ns.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0",
        "a fresh namespace forwards nothing"
    );

    attach_in(&ns.file(), pod(), &net()).unwrap();

    assert_eq!(
        tap_state(&ns, "tap0"),
        (vec!["10.0.0.1/24".to_string()], true)
    );
    assert_eq!(
        ns.run(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    assert_eq!(host_ip_forward(), host_before, "the host's setting moved");
    assert!(
        Command::new("ip")
            .args(["link", "show", "dev", "tap0"])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "the tap leaked into the host's namespace"
    );
    let table = ns.run(&["nft", "list", "table", "ip", NFT_TABLE]);
    for expected in [
        "ip saddr 10.0.0.0/24 oifname \"eth0\" masquerade",
        "ip daddr 10.200.7.9 tcp dport 8080 dnat to 10.0.0.42:8080",
        "ip daddr 10.200.7.9 udp dport 53 dnat to 10.0.0.42:53",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from:\n{table}"
        );
    }

    // Again, with one forward less: the table is replaced, not added to,
    // and the tap keeps its one address.
    let fewer = InstanceNet {
        forwards: net().forwards[..1].to_vec(),
        ..InstanceNet::default()
    };
    attach_in(&ns.file(), pod(), &fewer).unwrap();
    let again = ns.run(&["nft", "list", "table", "ip", NFT_TABLE]);
    assert!(!again.contains("udp dport 53"), "stale rule kept:\n{again}");
    assert_eq!(
        again.matches("dnat to 10.0.0.42:8080").count(),
        2,
        "{again}"
    );
    assert_eq!(
        tap_state(&ns, "tap0"),
        (vec!["10.0.0.1/24".to_string()], true)
    );
}

/// _LINUX_CAPABILITY_VERSION_3, for capset(2).
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[test]
fn a_process_without_cap_net_admin_attaches_to_the_tap() {
    if !available() {
        return;
    }
    let ns = Netns::new();
    let netns = ns.file();
    attach_in(&netns, pod(), &InstanceNet::default()).unwrap();

    // Capabilities belong to a thread: this one enters the namespace and
    // drops all of them, as a pod's hypervisor runs without
    // CAP_NET_ADMIN, then does what qemu's tap backend does.
    let fd = netns.as_fd();
    let (attached, refused, capeff) = std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let header = CapHeader {
                version: CAP_V3,
                pid: 0,
            };
            let data = [CapData::default(); 2];
            // SAFETY: capset reads the header and two data structs.
            let rc = unsafe {
                libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr())
            };
            assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let capeff = status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .unwrap()
                .trim()
                .to_string();
            let flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
            let attached = tun_set_iff("tap0", flags);
            // The control: without the capability, a new tap is refused.
            let refused = tun_set_iff("jpnocap0", libc::IFF_TAP | libc::IFF_NO_PI);
            (attached, refused, capeff)
        })
        .join()
        .unwrap()
    });
    assert_eq!(capeff, "0000000000000000");
    assert_eq!(
        refused.err().and_then(|e| e.raw_os_error()),
        Some(libc::EPERM),
        "creating a tap without CAP_NET_ADMIN must fail"
    );
    let held = attached.expect("attaching to the persistent tap");

    // Attaching the network again while the "hypervisor" holds the tap
    // keeps the tap and succeeds.
    attach_in(&netns, pod(), &InstanceNet::default()).unwrap();
    assert_eq!(
        tap_state(&ns, "tap0"),
        (vec!["10.0.0.1/24".to_string()], true)
    );
    drop(held);
}

/// The made-up MAC of the stand-in guest.
const GUEST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

/// A stand-in guest on the tap (the hypervisor's end): answers ARP for
/// its address and echoes the first UDP datagram sent to it, then
/// returns that datagram's source. Raw frames, no vnet header.
fn guest_echo_once(tap: &std::os::fd::OwnedFd, guest: [u8; 4]) -> Option<[u8; 4]> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut frame = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            tap.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).ok()? == 0 {
            continue;
        }
        let n = nix::unistd::read(tap.as_raw_fd(), &mut frame).ok()?;
        let f = &mut frame[..n];
        if n < 42 {
            continue;
        }
        let ethertype = [f[12], f[13]];
        if ethertype == [0x08, 0x06] && f[20..22] == [0, 1] && f[38..42] == guest {
            // ARP request for the guest: answer from GUEST_MAC.
            let asker_mac: [u8; 6] = f[22..28].try_into().ok()?;
            let asker_ip: [u8; 4] = f[28..32].try_into().ok()?;
            f[0..6].copy_from_slice(&asker_mac);
            f[6..12].copy_from_slice(&GUEST_MAC);
            f[21] = 2;
            f[22..28].copy_from_slice(&GUEST_MAC);
            f[28..32].copy_from_slice(&guest);
            f[32..38].copy_from_slice(&asker_mac);
            f[38..42].copy_from_slice(&asker_ip);
            nix::unistd::write(tap, f).ok()?;
        } else if ethertype == [0x08, 0x00] && f[23] == 17 && f[30..34] == guest {
            // UDP to the guest: swapping addresses and ports leaves both
            // checksums valid (one's-complement sums do not depend on
            // order).
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let source: [u8; 4] = f[26..30].try_into().ok()?;
            let (eth_dst, eth_src): ([u8; 6], [u8; 6]) =
                (f[0..6].try_into().ok()?, f[6..12].try_into().ok()?);
            f[0..6].copy_from_slice(&eth_src);
            f[6..12].copy_from_slice(&eth_dst);
            f[26..30].copy_from_slice(&guest);
            f[30..34].copy_from_slice(&source);
            let u = 14 + ihl;
            let (sport, dport) = ([f[u], f[u + 1]], [f[u + 2], f[u + 3]]);
            f[u..u + 2].copy_from_slice(&dport);
            f[u + 2..u + 4].copy_from_slice(&sport);
            nix::unistd::write(tap, f).ok()?;
            return Some(source);
        }
    }
    None
}

#[test]
fn a_datagram_to_the_pod_address_reaches_the_guest_and_back() {
    if !available() {
        return;
    }
    // The pod, and a peer standing in for the host on a veth pair.
    let pod_ns = Netns::new();
    let peer_ns = Netns::new();
    let status = Command::new("ip")
        .args(["link", "add", "name", "eth0", "netns"])
        .arg(pod_ns.child.id().to_string())
        .args(["type", "veth", "peer", "name", "eth1", "netns"])
        .arg(peer_ns.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    pod_ns.run(&["ip", "addr", "add", "10.200.7.9/16", "dev", "eth0"]);
    pod_ns.run(&["ip", "link", "set", "eth0", "up"]);
    peer_ns.run(&["ip", "addr", "add", "10.200.7.1/16", "dev", "eth1"]);
    peer_ns.run(&["ip", "link", "set", "eth1", "up"]);
    attach_in(&pod_ns.file(), pod(), &net()).unwrap();

    // The guest's end of the tap, opened in the pod's namespace.
    let pod_file = pod_ns.file();
    let tap = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(pod_file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            tun_set_iff("tap0", libc::IFF_TAP | libc::IFF_NO_PI).unwrap()
        })
        .join()
        .unwrap()
    });
    let peer_file = peer_ns.file();
    let (seen_by_guest, reply) = std::thread::scope(|s| {
        let guest = s.spawn(|| guest_echo_once(&tap, [10, 0, 0, 42]));
        let client = s.spawn(|| {
            nix::sched::setns(peer_file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            socket.send_to(b"to the guest", "10.200.7.9:53").unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from)
        });
        (guest.join().unwrap(), client.join().unwrap())
    });
    // The guest saw the peer's own address (DNAT, no source NAT), and
    // the reply came back from the pod's address (conntrack undid the
    // DNAT).
    assert_eq!(seen_by_guest, Some([10, 200, 7, 1]));
    assert_eq!(reply.0, b"to the guest");
    assert_eq!(reply.1, "10.200.7.9:53".parse().unwrap());
}

/// The IPv4 header checksum of `header` (its checksum field zero).
fn ip_checksum(header: &[u8]) -> [u8; 2] {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// An Ethernet frame with a UDP datagram (no UDP checksum, which IPv4
/// allows).
fn udp_frame(
    macs: ([u8; 6], [u8; 6]),
    ips: ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&macs.1);
    f.extend_from_slice(&macs.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&ips.0);
    ip.extend_from_slice(&ips.1);
    let sum = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&sum);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn the_guest_reaches_out_masqueraded_as_the_pod() {
    if !available() {
        return;
    }
    let pod_ns = Netns::new();
    let peer_ns = Netns::new();
    let status = Command::new("ip")
        .args(["link", "add", "name", "eth0", "netns"])
        .arg(pod_ns.child.id().to_string())
        .args(["type", "veth", "peer", "name", "eth1", "netns"])
        .arg(peer_ns.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    pod_ns.run(&["ip", "addr", "add", "10.200.7.9/16", "dev", "eth0"]);
    pod_ns.run(&["ip", "link", "set", "eth0", "up"]);
    peer_ns.run(&["ip", "addr", "add", "10.200.7.1/16", "dev", "eth1"]);
    peer_ns.run(&["ip", "link", "set", "eth1", "up"]);
    attach_in(&pod_ns.file(), pod(), &InstanceNet::default()).unwrap();
    let link: serde_json::Value =
        serde_json::from_str(&pod_ns.run(&["ip", "-j", "link", "show", "dev", "tap0"])).unwrap();
    let tap_mac: Vec<u8> = link[0]["address"]
        .as_str()
        .unwrap()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let tap_mac: [u8; 6] = tap_mac.try_into().unwrap();

    let pod_file = pod_ns.file();
    let tap = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(pod_file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            tun_set_iff("tap0", libc::IFF_TAP | libc::IFF_NO_PI).unwrap()
        })
        .join()
        .unwrap()
    });
    let peer_file = peer_ns.file();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (payload, from) = std::thread::scope(|s| {
        let peer = s.spawn(move || {
            nix::sched::setns(peer_file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let socket = std::net::UdpSocket::bind("10.200.7.1:9999").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from)
        });
        ready_rx.recv().unwrap();
        let frame = udp_frame(
            (GUEST_MAC, tap_mac),
            ([10, 0, 0, 42], [10, 200, 7, 1]),
            (4242, 9999),
            b"from the guest",
        );
        nix::unistd::write(&tap, &frame).unwrap();
        peer.join().unwrap()
    });
    assert_eq!(payload, b"from the guest");
    assert_eq!(
        from.ip(),
        "10.200.7.9".parse::<std::net::IpAddr>().unwrap(),
        "the guest's address must be masqueraded as the pod's"
    );
}

/// Addresses of `dev` in the namespace of `pid`, as ADDRESS/PREFIX.
fn addresses_in(pid: &str, dev: &str) -> Vec<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["--", "ip", "-j", "addr", "show", "dev", dev])
        .output()
        .unwrap();
    assert!(out.status.success(), "{dev} missing in the cell");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

#[test]
fn the_linux_driver_attaches_to_a_live_cell() {
    use jetpack::runtime::jails::instance_net::InstanceNetError;
    use jetpack::runtime::jails::{JailError, Jails, LinuxJails};

    if !available() || !common::pods_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let unpacked = Command::new("tar")
        .arg("-xJf")
        .arg(common::busybox_tarball())
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(unpacked.success());
    let pid = std::process::id();
    let bridge = format!("jpi{}", pid % 100000);
    // A /24 of its own, apart from tests/jails.rs's 10.251 and TestHost's.
    let network = format!("10.252.{}.0/24", pid % 250);
    let address = std::net::Ipv4Addr::new(10, 252, (pid % 250) as u8, 2);
    let spec = common::jails::spec(&format!("jpi{pid}-c"), &root, &network, address, &bridge);
    let jails = LinuxJails::new(common::JETPACK.into());
    let cell = jails.create(&spec).unwrap();
    let result = std::panic::catch_unwind(|| {
        jails
            .attach_instance_net(&cell, &spec, &net())
            .expect("attach");
        let holder = cell.0.split(' ').nth(1).unwrap();
        assert_eq!(addresses_in(holder, "tap0"), ["10.0.0.1/24"]);
        // The masquerade's interface is the pod's own, with its address.
        assert_eq!(addresses_in(holder, "eth0"), [format!("{address}/24")]);
        let overlapping = InstanceNet {
            network: Ipv4Net::parse(&network).unwrap(),
            gateway: std::net::Ipv4Addr::new(10, 252, (pid % 250) as u8, 1),
            guest: std::net::Ipv4Addr::new(10, 252, (pid % 250) as u8, 42),
            ..InstanceNet::default()
        };
        assert!(matches!(
            jails.attach_instance_net(&cell, &spec, &overlapping),
            Err(JailError::InstanceNet(InstanceNetError::Overlap { .. }))
        ));
    });
    jails.destroy(&cell, Duration::ZERO).unwrap();
    let _ = Command::new("ip").args(["link", "del", &bridge]).status();
    assert!(
        matches!(
            jails.attach_instance_net(&cell, &spec, &net()),
            Err(JailError::NotRunning(_))
        ),
        "a destroyed cell must not be attached to"
    );
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
