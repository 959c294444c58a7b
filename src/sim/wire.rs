//! What a simulated instance says, byte for byte (spec/uplink.md 2, 4, 5):
//! the auth and dock requests, the check of the 101, IDENT, the UPLINK
//! echo, STATS, LOG lines and the fake panic log, plus the deterministic
//! facts of an instance (its id, address, MAC) and the back-off schedule.
//! Everything here is pure (no I/O, no clock) so the exact bytes are
//! unit-tested; the caller passes times and counters in.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::hangar::ws::{accept_key, ResponseHead};

/// The instance id: the first 32 hex digits of SHA-1(`"{seed}-{index}"`),
/// standing in for an SMBIOS UUID without dashes. Deterministic, so a
/// rerun docks the same instances again.
pub fn instance_id(seed: &str, index: u64) -> String {
    let digest = Sha1::digest(format!("{seed}-{index}").as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(32);
    id
}

/// SHA-1 as 40 lowercase hex digits (what an UPDATE is acknowledged with).
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

/// `--bad-ack`: a well-formed SHA-1 hex that is not the payload's (that
/// of the payload behind a prefix, so it differs for every payload).
pub fn wrong_sha1_hex(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(b"jetpack sim: not what was sent\n");
    h.update(bytes);
    hex::encode(h.finalize())
}

/// Waits after the `n`th failed auth or dock in a row: 5 s × n, n going
/// 1..6, so at most 30 s (spec/uplink.md 2.4).
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(5 * u64::from(n.clamp(1, 6)))
}

/// `POST /auth`. The body is put together by string concatenation as in
/// the IncludeOS client, spacing included and nothing escaped.
pub fn auth_request(authority: &str, id: &str, key: &str, previous: Option<&str>) -> Vec<u8> {
    let body = format!("{{ \"id\": \"{id}\", \"key\": \"{key}\"}}");
    let mut req = format!(
        "POST /auth HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = previous {
        let _ = write!(req, "Authorization: Bearer {token}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(&body);
    req.into_bytes()
}

/// `GET /dock`: a version 13 upgrade, no subprotocol, no extensions.
pub fn dock_request(authority: &str, ws_key: &str, token: &str) -> Vec<u8> {
    format!(
        "GET /dock HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {ws_key}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes()
}

/// Checks the answer to the upgrade: anything but a correct 101 is a
/// failed dock.
pub fn check_upgrade(head: &ResponseHead, ws_key: &str) -> Result<(), String> {
    if head.status != 101 {
        return Err(format!("HTTP {} instead of 101", head.status));
    }
    if !head.has("upgrade", "websocket") {
        return Err("no Upgrade: websocket".into());
    }
    if !head.has("connection", "upgrade") {
        return Err("no Connection: Upgrade".into());
    }
    match head.header("sec-websocket-accept") {
        Some(a) if a.trim() == accept_key(ws_key) => {}
        Some(a) => return Err(format!("Sec-WebSocket-Accept {a:?} does not match the key")),
        None => return Err("no Sec-WebSocket-Accept".into()),
    }
    // We asked for neither, so the server may not pick one (RFC 6455 4.1).
    for name in ["sec-websocket-protocol", "sec-websocket-extensions"] {
        if head.header(name).is_some() {
            return Err(format!("unrequested {name}"));
        }
    }
    Ok(())
}

/// Whether a response keeps its connection open (HTTP/1.1's default).
pub fn keeps_alive(head: &ResponseHead) -> bool {
    !head.has("connection", "close")
}

/// What every instance of a run has in common.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The uplink token, as an image's config.json carries it (the URL is
    /// each instance's own: the one it is docking to).
    pub token: String,
    pub version: String,
    pub service: String,
    pub tag: Option<String>,
    pub send_stats_ms: u64,
    /// Whether the server certificate chain is checked (`--certs` given).
    pub verify: bool,
}

/// The one network stack of an instance, 10.0.0.0/8 addressed from its
/// index so that every instance has its own address.
pub fn net_address(index: u64) -> Ipv4Addr {
    // Host 0 is the network, 1 the gateway; wraps after 16 million.
    let host = (index % ((1 << 24) - 3)) as u32 + 2;
    Ipv4Addr::from(0x0a00_0000 | host)
}

/// A MAC in QEMU's habit for IncludeOS (c0:01:...) ending in the address.
pub fn mac_address(addr: Ipv4Addr) -> String {
    let [_, b, c, d] = addr.octets();
    format!("c0:01:0a:{b:02x}:{c:02x}:{d:02x}")
}

const CPU_FEATURES: &[&str] = &[
    "SSE3", "SSSE3", "SSE4.1", "SSE4.2", "AES", "AVX", "RDRAND", "XSAVE", "FPU", "APIC", "MSR",
    "SYSCALL", "NX", "RDTSCP",
];

/// `"<class> <vendor> (V 0x.. / P 0x..)"`, as IncludeOS names PCI devices.
const DEVICES: &[&str] = &[
    "Bridge Intel Corp. (V 0x8086 / P 0x1237)",
    "Bridge Intel Corp. (V 0x8086 / P 0x7000)",
    "Storage VirtIO (V 0x1af4 / P 0x1001)",
    "NIC VirtIO (V 0x1af4 / P 0x1000)",
];

/// A simulated instance has 128 MiB.
pub const PHYSICAL_RAM: u64 = 128 << 20;

#[derive(Serialize)]
struct Net {
    name: &'static str,
    addr: String,
    netmask: &'static str,
    gateway: &'static str,
    dns: &'static str,
    mac: String,
    driver: &'static str,
}

/// IDENT's keys, in the order the instance sends them (spec/uplink.md 5):
/// serde writes a struct's fields in declaration order.
#[derive(Serialize)]
struct Ident<'a> {
    uuid: &'a str,
    version: &'a str,
    service: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_time_taken: Option<u64>,
    arch: &'static str,
    physical_ram: u64,
    cpu_features: &'static [&'static str],
    devices: &'static [&'static str],
    net: [Net; 1],
}

/// The instance-specific facts of an IDENT.
pub struct IdentFacts<'a> {
    pub id: &'a str,
    pub index: u64,
    /// SHA-1 of the running binary and the swap's duration (ns), only
    /// after a live update.
    pub binary: Option<&'a str>,
    pub update_time_taken: Option<u64>,
}

pub fn ident(profile: &Profile, facts: &IdentFacts<'_>) -> Vec<u8> {
    let addr = net_address(facts.index);
    let ident = Ident {
        uuid: facts.id,
        version: &profile.version,
        service: &profile.service,
        binary: facts.binary,
        // IncludeOS leaves an empty tag out.
        tag: profile.tag.as_deref().filter(|t| !t.is_empty()),
        update_time_taken: facts.update_time_taken,
        arch: "x86_64",
        physical_ram: PHYSICAL_RAM,
        cpu_features: CPU_FEATURES,
        devices: DEVICES,
        net: [Net {
            name: "eth0",
            addr: addr.to_string(),
            netmask: "255.0.0.0",
            gateway: "10.0.0.1",
            dns: "10.0.0.1",
            mac: mac_address(addr),
            driver: "VirtioNet",
        }],
    };
    // Serializing plain strings and numbers into a Vec cannot fail.
    serde_json::to_vec(&ident).unwrap_or_default()
}

#[derive(Serialize)]
struct UplinkEcho<'a> {
    index: u32,
    url: &'a str,
    token: &'a str,
    tag: &'a str,
    certs: &'static str,
    verify: bool,
    reboot: bool,
    ws_logging: bool,
    serialize_ct: bool,
    send_stats: u64,
}

/// UPLINK: the instance's uplink configuration, echoed, with the `url` it
/// docked to.
pub fn uplink_echo(profile: &Profile, url: &str) -> Vec<u8> {
    let echo = UplinkEcho {
        index: 0,
        url,
        token: &profile.token,
        tag: profile.tag.as_deref().unwrap_or(""),
        certs: "/certs",
        verify: profile.verify,
        reboot: true,
        ws_logging: true,
        serialize_ct: false,
        send_stats: profile.send_stats_ms,
    };
    serde_json::to_vec(&echo).unwrap_or_default()
}

/// What an instance did, for the counters its STATS report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub frames_tx: u64,
    pub frames_rx: u64,
    pub bytes_tx: u64,
    pub bytes_rx: u64,
    /// TCP connections opened (auth and dock).
    pub connections: u64,
    /// Live updates this instance went through.
    pub updates: u64,
}

/// The moment a STATS is sent, and what has happened by then.
pub struct StatsFacts {
    /// Milliseconds since boot, and wall clock milliseconds since the Unix
    /// epoch (the benchmark measures latency with the latter).
    pub monotonic_ms: u64,
    pub rtc_ms: u64,
    pub traffic: Traffic,
}

enum Value {
    Int(u64),
    Float(f64),
}

/// STATS: a JSON array of `{"name", "value"}`, starting with the two
/// clocks and the memory in use, then Statman-style dotted counters.
pub fn stats(facts: &StatsFacts) -> Vec<u8> {
    let t = &facts.traffic;
    let uptime_s = facts.monotonic_ms / 1000;
    // Each WebSocket frame is about one TCP segment, plus its ACKs.
    let (seg_rx, seg_tx) = (
        t.frames_rx + t.connections * 3,
        t.frames_tx + t.connections * 3,
    );
    let arp = 2 + uptime_s / 60;
    let memuse = 14 * (1 << 20) + (t.bytes_rx + t.bytes_tx) % (1 << 20);
    let entries: [(&str, Value); 26] = [
        ("monotonic_ts_ms", Value::Int(facts.monotonic_ms)),
        ("rtc_ts_ms", Value::Int(facts.rtc_ms)),
        ("total_memuse", Value::Int(memuse)),
        ("eth0.ethernet.packets_rx", Value::Int(seg_rx * 2 + arp)),
        ("eth0.ethernet.packets_tx", Value::Int(seg_tx * 2 + arp)),
        ("eth0.ethernet.packets_dropped", Value::Int(0)),
        (
            "eth0.ethernet.bytes_rx",
            Value::Int(t.bytes_rx + seg_rx * 54),
        ),
        (
            "eth0.ethernet.bytes_tx",
            Value::Int(t.bytes_tx + seg_tx * 54),
        ),
        ("eth0.arp.requests_rx", Value::Int(arp)),
        ("eth0.arp.requests_tx", Value::Int(1)),
        ("eth0.arp.replies_rx", Value::Int(1)),
        ("eth0.arp.replies_tx", Value::Int(arp)),
        ("eth0.ip4.packets_rx", Value::Int(seg_rx * 2)),
        ("eth0.ip4.packets_tx", Value::Int(seg_tx * 2)),
        ("eth0.ip4.packets_dropped", Value::Int(0)),
        ("eth0.icmp.packets_rx", Value::Int(0)),
        ("eth0.icmp.packets_tx", Value::Int(0)),
        ("eth0.udp.packets_rx", Value::Int(1)),
        ("eth0.udp.packets_tx", Value::Int(1)),
        ("eth0.tcp.packets_rx", Value::Int(seg_rx * 2)),
        ("eth0.tcp.packets_tx", Value::Int(seg_tx * 2)),
        ("tcp.connections", Value::Int(t.connections)),
        ("system.updates", Value::Int(t.updates)),
        ("cpu0.halt_ratio", Value::Float(0.97)),
        (
            "heap.usage_ratio",
            Value::Float(memuse as f64 / PHYSICAL_RAM as f64),
        ),
        ("timers.active", Value::Int(4)),
    ];
    let mut out = String::with_capacity(1400);
    out.push('[');
    for (i, (name, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // The names are fixed ASCII without quotes: no escaping needed.
        let _ = match value {
            Value::Int(n) => write!(out, "{{\"name\":\"{name}\",\"value\":{n}}}"),
            Value::Float(x) => write!(out, "{{\"name\":\"{name}\",\"value\":{x:.4}}}"),
        };
    }
    out.push(']');
    out.into_bytes()
}

/// What the first boot prints before the uplink docks: the banner and
/// the uplink's own lines, buffered until the first LOG.
pub fn boot_log(profile: &Profile, url: &str, id: &str) -> String {
    format!(
        "================================================================================\n \
         IncludeOS {} (x86_64 / 64-bit)\n +--> Running [ {} ]\n\
         ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n\
         [ uplink ] Starting WS uplink on eth0 with ID {id}\n\
         [ uplink ] Auth to {}\n",
        profile.version, profile.service, url
    )
}

/// One application log line (`--log-ms`).
pub fn log_line(service: &str, seq: u64, monotonic_ms: u64) -> String {
    format!(
        "[ {service} ] tick {seq}: uptime {}.{:03} s\n",
        monotonic_ms / 1000,
        monotonic_ms % 1000
    )
}

/// The system log of a boot that panicked (`--panic`), sent as PANIC by
/// the next boot.
pub fn panic_log(profile: &Profile, url: &str, id: &str, monotonic_ms: u64) -> String {
    format!(
        "{}[ uplink ] Auth success (token received)\n[ uplink ] Dock established\n\n\
         \t**** PANIC: ****\n \
         CPU: 0, Reason: jetpack sim: simulated crash after {monotonic_ms} ms (--panic)\n\
         \tHeap is at: 0x1e00000 / 0x7ffffff  (diff=104857599)\n\
         \tHeap usage: 14336 kB (10 %) of 131072 kB\n\
         \tBacktrace:\n\
         ->  #0 0x000000000020a8ad + 0x02d: os::panic\n\
         ->  #1 0x0000000000240f1c + 0x11c: Service::ready\n\
         ->  #2 0x0000000000201d5b + 0x04b: kernel_main\n\
         \n[ Kernel ] Soft resetting to reboot...\n",
        boot_log(profile, url, id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            token: "tok".into(),
            version: "v0.14.2-sim".into(),
            service: "Starbase".into(),
            tag: None,
            send_stats_ms: 1000,
            verify: false,
        }
    }

    #[test]
    fn ids_are_32_hex_and_deterministic() {
        let a = instance_id("jetpack-sim", 0);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(a, instance_id("jetpack-sim", 0));
        assert_ne!(a, instance_id("jetpack-sim", 1));
        assert_ne!(a, instance_id("other", 0));
        // SHA-1("jetpack-sim-0"), cut to 32 digits.
        assert_eq!(a, &sha1_hex(b"jetpack-sim-0")[..32]);
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let wrong = wrong_sha1_hex(b"abc");
        assert_eq!(wrong.len(), 40);
        assert_ne!(wrong, sha1_hex(b"abc"));
    }

    #[test]
    fn backoff_is_5_s_times_n_capped_at_30() {
        let secs: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 5, 10, 15, 20, 25, 30, 30, 30]);
    }

    #[test]
    fn the_auth_request_is_byte_exact() {
        let first = auth_request("h:9090", "0123abcd", "s3cret", None);
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "POST /auth HTTP/1.1\r\nHost: h:9090\r\nContent-Type: application/json\r\n\
             Content-Length: 36\r\n\r\n{ \"id\": \"0123abcd\", \"key\": \"s3cret\"}"
        );
        let again =
            String::from_utf8(auth_request("h:9090", "0123abcd", "s3cret", Some("a.1.x"))).unwrap();
        assert!(again.contains("Content-Length: 36\r\nAuthorization: Bearer a.1.x\r\n\r\n{ \"id\""));
    }

    #[test]
    fn the_dock_request_and_its_answer() {
        let req =
            String::from_utf8(dock_request("h:1", "dGhlIHNhbXBsZSBub25jZQ==", "t.1.x")).unwrap();
        assert!(req.starts_with("GET /dock HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(req.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(req.contains("Authorization: Bearer t.1.x\r\n"));
        assert!(!req.to_ascii_lowercase().contains("protocol"));
        assert!(req.ends_with("\r\n\r\n"));
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = |status, headers: &[(&str, &str)]| ResponseHead {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let good = [
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
            // RFC 6455 1.3's example.
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(check_upgrade(&head(101, &good), key), Ok(()));
        assert!(check_upgrade(&head(200, &good), key).is_err());
        assert!(check_upgrade(&head(101, &good[..2]), key).is_err());
        let mut wrong = good;
        wrong[2].1 = "AAAA";
        assert!(check_upgrade(&head(101, &wrong), key).is_err());
        let mut extra = good.to_vec();
        extra.push(("Sec-WebSocket-Protocol", "chat"));
        assert!(check_upgrade(&head(101, &extra), key).is_err());
        assert!(keeps_alive(&head(200, &[])));
        assert!(!keeps_alive(&head(200, &[("Connection", "close")])));
    }

    #[test]
    fn ident_keys_come_in_the_instance_order() {
        let keys = |json: &[u8]| -> Vec<String> {
            // Key order, read off the text (a Map would sort them).
            let text = std::str::from_utf8(json).unwrap();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut keys: Vec<(usize, String)> = v
                .as_object()
                .unwrap()
                .keys()
                .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
                .collect();
            keys.sort();
            keys.into_iter().map(|(_, k)| k).collect()
        };
        let id = instance_id("s", 3);
        let plain = ident(
            &profile(),
            &IdentFacts {
                id: &id,
                index: 3,
                binary: None,
                update_time_taken: None,
            },
        );
        assert_eq!(
            keys(&plain),
            [
                "uuid",
                "version",
                "service",
                "arch",
                "physical_ram",
                "cpu_features",
                "devices",
                "net"
            ]
        );
        let mut tagged = profile();
        tagged.tag = Some("blue".into());
        let updated = ident(
            &tagged,
            &IdentFacts {
                id: &id,
                index: 3,
                binary: Some("ab".repeat(20).as_str()),
                update_time_taken: Some(123),
            },
        );
        assert_eq!(
            keys(&updated),
            [
                "uuid",
                "version",
                "service",
                "binary",
                "tag",
                "update_time_taken",
                "arch",
                "physical_ram",
                "cpu_features",
                "devices",
                "net"
            ]
        );
        let v: serde_json::Value = serde_json::from_slice(&updated).unwrap();
        assert_eq!(v["uuid"], id.as_str());
        assert_eq!(v["service"], "Starbase");
        assert_eq!(v["update_time_taken"], 123);
        assert_eq!(v["devices"][3], "NIC VirtIO (V 0x1af4 / P 0x1000)");
        let net = &v["net"][0];
        assert_eq!(net["addr"], "10.0.0.5");
        assert_eq!(net["mac"], "c0:01:0a:00:00:05");
        let net_keys: Vec<&str> =
            ["name", "addr", "netmask", "gateway", "dns", "mac", "driver"].to_vec();
        assert_eq!(net.as_object().unwrap().len(), net_keys.len());
        // An empty tag is left out, as IncludeOS does.
        tagged.tag = Some(String::new());
        assert!(!keys(&ident(
            &tagged,
            &IdentFacts {
                id: &id,
                index: 3,
                binary: None,
                update_time_taken: None
            }
        ))
        .contains(&"tag".to_string()));
    }

    #[test]
    fn every_instance_has_its_own_address() {
        let addrs: std::collections::HashSet<Ipv4Addr> = (0..70_000).map(net_address).collect();
        assert_eq!(addrs.len(), 70_000);
        assert_eq!(net_address(0), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(net_address(300), Ipv4Addr::new(10, 0, 1, 46));
    }

    #[test]
    fn the_uplink_echo_has_every_key() {
        let v: serde_json::Value =
            serde_json::from_slice(&uplink_echo(&profile(), "http://127.0.0.1:9090")).unwrap();
        let o = v.as_object().unwrap();
        for k in [
            "index",
            "url",
            "token",
            "tag",
            "certs",
            "verify",
            "reboot",
            "ws_logging",
            "serialize_ct",
            "send_stats",
        ] {
            assert!(o.contains_key(k), "{k}");
        }
        assert_eq!(o.len(), 10);
        assert_eq!(v["url"], "http://127.0.0.1:9090");
        assert_eq!(v["send_stats"], 1000);
    }

    #[test]
    fn stats_is_an_array_of_names_and_values() {
        let facts = StatsFacts {
            monotonic_ms: 61_000,
            rtc_ms: 1_700_000_000_123,
            traffic: Traffic {
                frames_tx: 10,
                frames_rx: 20,
                bytes_tx: 1000,
                bytes_rx: 500,
                connections: 2,
                updates: 1,
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&stats(&facts)).unwrap();
        let a = v.as_array().unwrap();
        assert!(a.len() >= 23, "{}", a.len());
        let names: Vec<&str> = a.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names[..3], ["monotonic_ts_ms", "rtc_ts_ms", "total_memuse"]);
        assert!(names.iter().skip(3).all(|n| n.contains('.')));
        for n in [
            "eth0.ethernet.packets_rx",
            "eth0.ethernet.packets_tx",
            "system.updates",
            "tcp.connections",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(a
            .iter()
            .all(|e| e.as_object().unwrap().len() == 2 && e["value"].is_number()));
        assert!(a.iter().any(|e| e["value"].is_f64()), "a float or two");
        assert_eq!(a[0]["value"], 61_000);
        assert_eq!(a[1]["value"], 1_700_000_000_123u64);
        let get = |n: &str| {
            a.iter().find(|e| e["name"] == n).unwrap()["value"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(get("system.updates"), 1);
        assert_eq!(get("tcp.connections"), 2);
    }

    #[test]
    fn logs_are_lines() {
        let p = profile();
        let boot = boot_log(&p, "http://h:1", "abc");
        assert!(boot.contains("[ uplink ] Starting WS uplink on eth0 with ID abc\n"));
        assert!(boot.ends_with('\n'));
        assert_eq!(
            log_line("Starbase", 7, 1234),
            "[ Starbase ] tick 7: uptime 1.234 s\n"
        );
        let panic = panic_log(&p, "http://h:1", "abc", 100);
        assert!(panic.starts_with(&boot) && panic.contains("PANIC"));
    }
}
