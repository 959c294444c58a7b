//! Deterministic NaCl generators (spec/nacl.md), for the `nacl` bench and
//! for any test that wants a large valid NaCl: include it with
//! `#[path = "../benches/support/nacl_gen.rs"] mod nacl_gen;`.
//! (Not a bench target itself: cargo only discovers `benches/*.rs` and
//! `benches/*/main.rs`.)
//!
//! Everything here is valid by the spec: unique element names (no `-`, none
//! of `tcp udp icmp ct ip`), unique non-VLAN Iface indexes, IPv4 bytes <= 255,
//! masks <= 32, `in` exactly where the right side is a range, CIDR, list or
//! object, Filter::IP functions on chains ending in `accept`/`drop`, calls
//! only to functions defined earlier of an allowed subtype, each Iface chain
//! and member set once, all Gateway routes on plain (non-VLAN) Ifaces.

#![allow(dead_code)]

use std::fmt::Write;

/// A generated NaCl and what is in it.
pub struct Generated {
    pub text: String,
    /// Units: each one Iface `eth{i}` with its constants, filters, route and
    /// dotted assignments.
    pub units: usize,
    pub ifaces: usize,
    pub functions: usize,
    pub routes: usize,
    pub constants: usize,
    pub dotted: usize,
}

/// Second and third address bytes of unit `i` (10.a.b.0/24 is its net).
fn ab(i: usize) -> (usize, usize) {
    (1 + i / 256, i % 256)
}

/// What unit `i` adds: (definitions, Gateway routes, dotted assignments at
/// the end, dotted assignments at the top) and its counts.
struct Unit {
    body: String,
    routes: String,
    tail: String,
    head: String,
    ifaces: usize,
    functions: usize,
    routes_n: usize,
    constants: usize,
    dotted: usize,
}

fn unit(i: usize) -> Unit {
    let (a, b) = ab(i);
    let mut u = Unit {
        body: String::with_capacity(2048),
        routes: String::new(),
        tail: String::new(),
        head: String::new(),
        ifaces: 1,
        functions: 2,
        routes_n: 1,
        constants: 5,
        dotted: 1,
    };
    let s = &mut u.body;
    let lo = 1024 + (i * 7) % 30000;
    // Constants: int, int range, CIDR, list (IPs, CIDR, IP range), object.
    let _ = write!(
        s,
        "\n# unit {i}\n\
         port_{i}: {port}\n\
         ports_{i}: {lo}-{hi}\n\
         net_{i}: 10.{a}.{b}.0/24\n\
         trusted_{i}: [10.{a}.{b}.10, 10.{a}.{b}.11, 172.16.{a}.0/24, 192.168.{b}.1-192.168.{b}.20]\n\
         svc_{i}: {{ port: {svc}, hosts: 10.{a}.{b}.128/25 }}\n",
        port = 1024 + i % 60000,
        hi = lo + 100,
        svc = 8000 + i % 1000,
    );
    // The Iface; every 97th spells its type in lower case (case-insensitive).
    let ty = if i % 97 == 13 { "iface" } else { "Iface" };
    let _ = write!(
        s,
        "{ty} eth{i} {{\n  index: {index},\n  address: 10.{a}.{b}.2,\n  netmask: 255.255.255.0,\n  gateway: 10.{a}.{b}.1",
        index = 2 * i,
    );
    if i % 10 == 3 {
        let _ = write!(
            s,
            ",\n  buffer_limit: {},\n  send_queue_limit: {}",
            1000 + i,
            2000 + i
        );
    }
    if i % 6 == 1 {
        // A chain set inside the object (and so never by a dotted one).
        let _ = write!(s, ",\n  prerouting: ipf{i}");
    }
    s.push_str("\n}\n");
    // Now and then a DHCP Iface whose index comes as a dotted assignment,
    // and a VLAN on eth{i}'s NIC.
    if i % 32 == 5 {
        let _ = writeln!(s, "Iface dyn{i} dhcp");
        let _ = writeln!(u.tail, "dyn{i}.index: {}", 2 * i + 1);
        u.ifaces += 1;
        u.dotted += 1;
    }
    if i % 16 == 9 {
        let _ = writeln!(
            s,
            "Iface vlan{i} {{ index: {}, vlan: {}, address: 100.{}.{b}.2, netmask: 255.255.255.0 }}",
            2 * i,
            100 + i % 3900,
            64 + a % 64,
        );
        u.ifaces += 1;
    }
    // Filter::TCP: nested if/else, ranges, lists, dotted constant, ct.
    let _ = write!(
        s,
        "Filter::TCP tcpf{i} {{\n\
         \x20 if (tcp.dport in ports_{i}) {{\n\
         \x20   if (ip.saddr in trusted_{i}) {{ accept }} else {{ log(\"tcp {i}: not trusted\") drop }}\n\
         \x20 }} else {{\n\
         \x20   if (tcp.dport == svc_{i}.port or tcp.dport in [http, https, ssh, {p2}]) {{\n\
         \x20     if (ip.saddr in svc_{i}.hosts) {{ accept }}\n\
         \x20   }}\n\
         \x20   if (tcp.sport in 1-1023 and not tcp.dport == port_{i}) {{ drop }}\n\
         \x20 }}\n",
        p2 = 10_000 + i % 50_000,
    );
    if !i.is_multiple_of(4) {
        // Calls the previous unit's (an earlier function, so no cycles).
        let _ = writeln!(s, "  tcpf{}", i - 1);
    }
    let _ = write!(
        s,
        "  if (ct.state == established || ct.state == related) {{ accept }} else {{ drop }}\n}}\n"
    );
    // Filter::IP, for the chains: calls the TCP one, ends in a verdict.
    let _ = write!(
        s,
        "Filter::IP ipf{i} {{\n\
         \x20 // traffic of unit {i}\n\
         \x20 if (ip.saddr in net_{i}) {{\n\
         \x20   if (ip.protocol == tcp) {{ tcpf{i} }}\n\
         \x20   if (ip.protocol == icmp and ip.ttl > 1) {{ accept }}\n\
         \x20 }} else {{\n\
         \x20   if (not ip.daddr in 10.0.0.0/8) {{ drop }}\n\
         \x20   if (ip.ttl < 2 or ip.length > 1500) {{ drop }}\n\
         \x20   if (ip.daddr == eth{i}.address) {{ syslog(info, \"to eth{i}\") accept }}\n\
         \x20   if (ip.saddr in 10.{a}.0.1-10.{a}.0.200) {{ log(\"range\") }}\n\
         \x20 }}\n\
         \x20 if (ct.state in [established, related]) {{ accept }}\n\
         \x20 /* the default verdict */\n\
         \x20 drop\n\
         }}\n"
    );
    if i % 8 == 2 {
        let _ = write!(
            s,
            "Nat::TCP natf{i} {{\n  if (tcp.dport == 8080) {{ dnat(10.{a}.{b}.10, 80) }}\n}}\n\
             Nat::IP natip{i} {{\n  if (ip.protocol == tcp) {{ natf{i} }}\n  snat(10.{a}.{b}.2)\n}}\n"
        );
        u.functions += 2;
    }
    // Gateway routes: a net route each, a host route every 4th.
    let _ = write!(
        u.routes,
        ",\n  route{i}: {{ net: 10.{a}.{b}.0, netmask: 255.255.255.0, iface: eth{i}, nexthop: 10.{a}.{b}.1, cost: {} }}",
        1 + i % 10
    );
    if i % 4 == 1 {
        let _ = write!(
            u.routes,
            ",\n  host{i}: {{ host: 10.{a}.{b}.77, netmask: 255.255.255.255, iface: eth{i}, nexthop: 10.{a}.{b}.1 }}"
        );
        u.routes_n += 1;
    }
    // Dotted assignments: a chain on every Iface not set in the object,
    // members on some Ifaces and on a constant object; a few of them at the
    // top of the file, before the element they extend.
    if i % 6 != 1 {
        let _ = writeln!(u.tail, "eth{i}.input: ipf{i}");
    } else {
        let _ = writeln!(
            u.tail,
            "eth{i}.output: [ipf{i}, ipf{}]",
            i.saturating_sub(1)
        );
    }
    if i.is_multiple_of(2) {
        let _ = writeln!(u.tail, "eth{i}.dns: 10.{a}.{b}.1");
        u.dotted += 1;
    }
    if i.is_multiple_of(5) {
        let line = format!("eth{i}.masquerade: {}\n", i.is_multiple_of(10));
        if i < 50 {
            u.head.push_str(&line);
        } else {
            u.tail.push_str(&line);
        }
        u.dotted += 1;
    }
    if i.is_multiple_of(3) {
        let _ = writeln!(u.tail, "svc_{i}.limit: {}", 100 + i);
        u.dotted += 1;
    }
    u
}

const HEADER: &str = "/* Generated by benches/support/nacl_gen.rs: a large, valid NaCl. */\n";

const SINGLETONS: &str = "\
Syslog logs { address: 10.255.0.2, port: 6514 }
Conntrack conntrack {
  limit: 20000,
  reserve: 10000,
  stateful_tcp: true,
  timeout: {
    established: { tcp: 600, udp: 60, icmp: 10 },
    unconfirmed: { tcp: 30, udp: 30, icmp: 5 },
    confirmed: { tcp: 60, udp: 30, icmp: 5 }
  }
}
";

/// After the units (they define eth0 and eth1, which these use).
const TRAILER: &str = "
lb_pool: [ { address: 10.1.1.10, port: 80 }, { address: 10.1.1.11, port: 80 }, { address: 10.1.1.12, port: 8080 } ]
Load_balancer lb {
  layer: tcp,
  clients: { iface: eth0, port: 80, wait_queue_limit: 1000, session_limit: 1000 },
  servers: { iface: eth1, algorithm: round_robin, pool: lb_pool }
}
Timer stats_timer { interval: 10, data: [timestamp, stats, memory, cpu, lb, timers] }
Timer slow_timer { interval: 300, data: [stack-sampling] }
";

const GATEWAY_OPEN: &str = "\nGateway gw {\n  send_time_exceeded: true,\n  forward: ipf0";
const GATEWAY_CLOSE: &str = "\n}\n\n";

/// A valid NaCl of at most `max_bytes` (and at least 2 units), as close to
/// it as whole units allow; the same bytes every time.
pub fn generate(max_bytes: usize) -> Generated {
    let fixed =
        HEADER.len() + SINGLETONS.len() + TRAILER.len() + GATEWAY_OPEN.len() + GATEWAY_CLOSE.len();
    let (mut head, mut body, mut routes, mut tail) =
        (String::new(), String::new(), String::new(), String::new());
    let mut g = Generated {
        text: String::new(),
        units: 0,
        ifaces: 0,
        functions: 0,
        routes: 0,
        constants: 1, // lb_pool
        dotted: 0,
    };
    loop {
        let u = unit(g.units);
        let size = fixed + head.len() + body.len() + routes.len() + tail.len();
        let more = u.head.len() + u.body.len() + u.routes.len() + u.tail.len();
        if g.units >= 2 && size + more > max_bytes {
            break;
        }
        head.push_str(&u.head);
        body.push_str(&u.body);
        routes.push_str(&u.routes);
        tail.push_str(&u.tail);
        g.units += 1;
        g.ifaces += u.ifaces;
        g.functions += u.functions;
        g.routes += u.routes_n;
        g.constants += u.constants;
        g.dotted += u.dotted;
    }
    let mut text = String::with_capacity(max_bytes);
    for part in [
        HEADER,
        &head,
        SINGLETONS,
        &body,
        TRAILER,
        GATEWAY_OPEN,
        &routes,
        GATEWAY_CLOSE,
        &tail,
    ] {
        text.push_str(part);
    }
    g.text = text;
    g
}

/// A typical service's NaCl, ~2 KiB: the spec's example grown with what a
/// real one carries (TCP filter, Gateway, Conntrack, Syslog, Timer, NAT).
pub const TYPICAL: &str = "\
// A load-balanced web service with a firewall.
Iface uplink { index: 0, address: 10.0.0.42, netmask: 255.255.255.0, gateway: 10.0.0.1, dns: 10.0.0.1 }
Iface outside { index: 1, address: 10.0.1.43, netmask: 255.255.255.0, gateway: 10.0.1.1 }
Iface inside  { index: 2, address: 10.0.2.44, netmask: 255.255.255.0, gateway: 10.0.2.1 }

Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 1000, session_limit: 1000 },
  servers: { iface: inside, algorithm: round_robin,
             pool: [ { address: 10.0.2.10, port: 80 }, { address: 10.0.2.11, port: 80 } ] }
}

admin_nets: [10.0.0.0/24, 192.168.1.0/24]
web_ports: [http, https]

Syslog logs { address: 10.0.0.5, port: 6514 }
Conntrack conntrack { limit: 20000, reserve: 10000, stateful_tcp: true,
  timeout: { established: { tcp: 600, udp: 60, icmp: 10 } } }
Timer metrics { interval: 30, data: [timestamp, stats, memory, cpu, lb] }

Filter::TCP web {
  if (tcp.dport in web_ports) { accept }
  if (tcp.dport == ssh) {
    if (ip.saddr in admin_nets) { accept } else { log(\"ssh refused\") drop }
  }
  if (tcp.dport in 8000-8999 and ip.saddr in 10.0.2.0/24) { accept }
  drop
}

Filter::IP my_filter {
  if (ct.state in [established, related]) { accept }
  if (ip.saddr in 10.0.0.0/24) { accept }
  if (ip.protocol == tcp) { web }
  if (ip.protocol == icmp) {
    if (ip.ttl > 1) { accept } else { drop }
  }
  syslog(notice, \"dropped\")
  drop
}

Filter::IP forward_filter {
  if (ip.daddr in 10.0.2.0/24 and ip.saddr in 10.0.1.0/24) { accept }
  drop
}

Nat::TCP port_forward {
  if (tcp.dport == 2222) { dnat(10.0.2.10, 22) }
}
Nat::IP nat_in {
  if (ip.protocol == tcp) { port_forward }
}

Gateway gw {
  send_time_exceeded: true,
  forward: forward_filter,
  default_route: { net: 0.0.0.0, netmask: 0.0.0.0, iface: uplink, nexthop: 10.0.0.1 },
  inside_net: { net: 10.0.2.0, netmask: 255.255.255.0, iface: inside, cost: 1 },
  outside_net: { net: 10.0.1.0, netmask: 255.255.255.0, iface: outside, cost: 1 }
}

uplink.input: my_filter
outside.input: [my_filter]
inside.masquerade: true
";

/// A JSON document of about `min_bytes` (at least), shaped like the
/// generated NaCl (an object per unit: iface, constants, rules), for the
/// serde_json baseline.
pub fn json_like(min_bytes: usize) -> String {
    let mut s = String::with_capacity(min_bytes + 4096);
    s.push_str("{\"units\": [\n");
    let mut i = 0;
    while s.len() < min_bytes {
        let (a, b) = ab(i);
        if i > 0 {
            s.push_str(",\n");
        }
        let _ = write!(
            s,
            "{{\"iface\": {{\"name\": \"eth{i}\", \"index\": {idx}, \"address\": \"10.{a}.{b}.2\", \
             \"netmask\": \"255.255.255.0\", \"gateway\": \"10.{a}.{b}.1\", \"input\": \"ipf{i}\"}},\n \
             \"constants\": {{\"port\": {port}, \"ports\": [{lo}, {hi}], \"net\": \"10.{a}.{b}.0/24\", \
             \"trusted\": [\"10.{a}.{b}.10\", \"10.{a}.{b}.11\", \"172.16.{a}.0/24\"]}},\n \
             \"tcp_rules\": [\
             {{\"if\": {{\"in\": [\"tcp.dport\", \"ports_{i}\"]}}, \"then\": [{{\"if\": {{\"in\": [\"ip.saddr\", \"trusted_{i}\"]}}, \"then\": [\"accept\"], \"else\": [\"drop\"]}}]}},\n  \
             {{\"if\": {{\"or\": [{{\"==\": [\"tcp.dport\", {svc}]}}, {{\"in\": [\"tcp.dport\", [80, 443, 22]]}}]}}, \"then\": [\"accept\"]}},\n  \
             {{\"if\": {{\"==\": [\"ct.state\", \"established\"]}}, \"then\": [\"accept\"], \"else\": [\"drop\"]}}],\n \
             \"ip_rules\": [\
             {{\"if\": {{\"in\": [\"ip.saddr\", \"10.{a}.{b}.0/24\"]}}, \"then\": [\"tcpf{i}\"]}},\n  \
             {{\"if\": {{\"or\": [{{\"<\": [\"ip.ttl\", 2]}}, {{\">\": [\"ip.length\", 1500]}}]}}, \"then\": [\"drop\"]}}, \"drop\"],\n \
             \"route\": {{\"net\": \"10.{a}.{b}.0\", \"netmask\": \"255.255.255.0\", \"iface\": \"eth{i}\", \"cost\": {cost}, \"enabled\": true}}}}",
            idx = 2 * i,
            port = 1024 + i,
            lo = 1024 + (i * 7) % 30000,
            hi = 1124 + (i * 7) % 30000,
            svc = 8000 + i % 1000,
            cost = 1 + i % 10,
        );
        i += 1;
    }
    s.push_str("\n]}\n");
    s
}
