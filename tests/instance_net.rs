//! The Linux instance network applied to a real network namespace (a
//! child `unshare --net cat`, standing in for a pod's holder), checked
//! from outside with ip(8), nft(8) and /proc; and a process without
//! CAP_NET_ADMIN, as a pod's hypervisor is, attaching to the tap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, Command, Stdio};

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
