//! The rules one by one; tests/nacl/ holds the corpus of whole files.

use crate::nacl::{check, Diagnostic};

const SPEC_EXAMPLE: &str = "\
Iface uplink { index: 0, address: 10.0.0.42, netmask: 255.255.255.0, gateway: 10.0.0.1 }
Iface outside { index: 1, address: 10.0.0.43, netmask: 255.255.255.0, gateway: 10.0.0.1 }
Iface inside  { index: 2, address: 10.0.0.44, netmask: 255.255.255.0, gateway: 10.0.0.1 }

Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 1000, session_limit: 1000 },
  servers: { iface: inside, algorithm: round_robin,
             pool: [ { address: 10.0.0.10, port: 80 }, { address: 10.0.0.11, port: 80 } ] }
}

Filter::IP my_filter {
  if (ip.saddr in 10.0.0.0/24) { accept }
  drop
}
uplink.input: my_filter
";

fn errors(src: &str) -> Vec<String> {
    check(src)
        .errors
        .iter()
        .map(Diagnostic::to_string)
        .collect()
}

/// The warnings of `src`, each as `line L:C message`.
fn warnings(src: &str) -> Vec<String> {
    check(src)
        .warnings
        .iter()
        .map(Diagnostic::to_string)
        .collect()
}

fn first(src: &str) -> String {
    errors(src)
        .into_iter()
        .next()
        .unwrap_or_else(|| "valid".into())
}

const IFACE: &str = "Iface eth0 { index: 0, address: 10.0.0.2, netmask: 255.255.255.0 }\n";

#[test]
fn the_spec_example_is_valid() {
    assert_eq!(errors(SPEC_EXAMPLE), Vec::<String>::new());
}

#[test]
fn names_types_and_singletons() {
    assert_eq!(first("Ifacee eth0 dhcp"), "line 1:0 Undefined type Ifacee");
    assert_eq!(
        first(&format!("{IFACE}Iface eth0 dhcp")),
        "line 2:6 Element eth0 has already been defined"
    );
    assert_eq!(
        first("Iface my-if dhcp"),
        "line 1:6 Invalid character (-) in name my-if"
    );
    assert_eq!(first("Iface TCP dhcp"), "line 1:6 Invalid name TCP");
    assert_eq!(
        first(&format!("{IFACE}Gateway a [{{net: 10.0.0.0, netmask: 255.0.0.0, iface: eth0}}]\ngateway b [{{net: 10.0.0.0, netmask: 255.0.0.0, iface: eth0}}]")),
        "line 3:0 A gateway has already been defined"
    );
    assert_eq!(first("Vlan v { index: 0 }"), "line 1:0 Undefined type Vlan");
}

#[test]
fn iface_members_and_values() {
    assert_eq!(
        first("Iface eth0 { index: 0, adress: 10.0.0.1 }"),
        "line 1:23 Invalid Iface member adress"
    );
    assert_eq!(
        first("Iface eth0 dhcpp"),
        "line 1:11 Invalid Iface value dhcpp"
    );
    assert_eq!(
        first("Iface eth0 { config: dhcp }"),
        "line 1:11 An index needs to be specified for all Ifaces"
    );
    assert_eq!(
        first("Iface eth0 { index: 0, config: dhcpp }"),
        "line 1:31 Invalid config value dhcpp"
    );
    assert_eq!(
        first(&format!(
            "{IFACE}Iface eth1 {{ index: 0, address: 10.0.0.3, netmask: 255.255.255.0 }}"
        )),
        // The reference's dict holds eth1 before eth0: eth0 is the second.
        "line 1:20 Another Iface has been defined with index 0"
    );
    assert_eq!(
        first("Iface eth0 { index: 0, address: 10.0.0.256, netmask: 255.255.255.0 }"),
        "line 1:32 IPv4 addr 10.0.0.256 contains bytes greater than 255"
    );
    // A VLAN shares its NIC's index, and needs an address unless dhcp.
    assert_eq!(
        first(&format!("{IFACE}Iface v1 {{ index: 0, vlan: 10, address: 10.0.1.2, netmask: 255.255.255.0 }}\nIface v2 {{ index: 0, vlan: 11, config: dhcp }}")),
        "valid"
    );
    assert_eq!(
        first("Iface v1 { index: 0, vlan: 10, config: dhcp, address: 10.0.0.1 }"),
        "line 1:39 An Iface with config set to dhcp should not specify address, netmask, gateway or dns"
    );
    // Members may be added anywhere in the file, once.
    assert_eq!(
        first("eth0.address: 10.0.0.2\nIface eth0 { index: 0, netmask: 255.255.255.0 }"),
        "valid"
    );
    assert_eq!(
        first(&format!("{IFACE}eth0.address: 10.0.0.3")),
        "line 2:0 Member address has already been set"
    );
}

#[test]
fn chains_take_ip_filters_with_a_default_verdict() {
    let nf = "Filter::IP f {\n  if (ip.ttl > 3) { accept }\n}\n";
    assert_eq!(
        first(&format!("{IFACE}{nf}eth0.input: f")),
        "line 2:0 Missing default verdict at the end of this Filter"
    );
    assert_eq!(
        first(&format!("{IFACE}eth0.input: nope")),
        "line 2:12 No function with the name nope exists"
    );
    let tcp = "Filter::TCP t {\n  drop\n}\n";
    assert!(first(&format!("{IFACE}{tcp}eth0.input: t"))
        .starts_with("line 2:0 Only a function of subtype IP"));
    // Not on a chain: no default verdict needed.
    assert_eq!(first(nf), "valid");
}

#[test]
fn function_bodies() {
    assert_eq!(
        first("Filter::TCP f {\n  if (tcp.dpot == 80) { accept }\n  drop\n}"),
        "line 2:6 No property named dpot in TCP"
    );
    assert_eq!(
        first("Filter::IP f {\n  if (ip.saddr == 10.0.0.0/24) { accept }\n  drop\n}"),
        "line 2:15 Invalid operator (==). Only the 'in' operator is valid when comparing a property to a range, cidr, list or object"
    );
    assert_eq!(
        first("Filter::IP f {\n  if (ip.ttl in 5) { accept }\n  drop\n}"),
        "line 2:13 The 'in' operator can only be used when comparing a property to a range, cidr, list or object"
    );
    assert_eq!(
        first("Filter::IP f {\n  dnat(10.0.0.1)\n}"),
        "line 2:2 Error transpiling action dnat: Legal actions for a function of type Filter are: accept, drop, log, syslog"
    );
    assert_eq!(
        first("Filter::IP f {\n  if (x > 2) { drop }\n  drop\n}"),
        "line 2:6 Undefined value x"
    );
    assert_eq!(
        first("Filter::IP f {\n  if (tcp.dport == 80) { drop }\n  drop\n}"),
        "line 2:6 A function of subtype IP cannot test on tcp properties"
    );
    let nested = "Filter::IP f {\n  Filter::TCP g {\n    if (tcp.dport in [ssh, http, 8000-8080]) { accept }\n  }\n  if (not ct.state == established and ip.ttl >= (-1)) { accept }\n  drop\n}";
    assert_eq!(first(nested), "valid");
    assert_eq!(
        first("Filter::TCP t { accept }\nFilter::UDP u { t }"),
        "line 2:16 Cannot call a function of subtype TCP inside a function of subtype UDP"
    );
}

#[test]
fn gateway_load_balancer_syslog_timer_conntrack() {
    assert_eq!(
        first(&format!("{IFACE}Gateway gw {{ r1: {{ net: 10.0.0.0, netmask: 255.255.255.0, iface: eth0, via: 1 }} }}")),
        "line 2:71 via is not a valid Gateway route member. Valid members are: host, net, netmask, nexthop, iface, cost"
    );
    assert_eq!(
        first(&format!(
            "{IFACE}Gateway gw {{ r1: {{ net: 10.0.0.0, iface: eth0 }} }}"
        )),
        "line 2:17 A Gateway route must specify iface, netmask and either net or host"
    );
    assert_eq!(
        first(&SPEC_EXAMPLE.replace("round_robin", "random")),
        "line 8:39 Invalid algorithm random"
    );
    assert_eq!(
        first("Syslog s { address: 10.0.0.1 }"),
        "line 1:0 Syslog address and/or port have not been specified"
    );
    assert_eq!(
        first("Timer t { interval: 0, data: [stats] }"),
        "line 1:20 Invalid interval value (0). It needs to resolve to a positive number (number of seconds)"
    );
    // The reference accepts these (its timers example has the first):
    // warnings, not errors.
    let lb = "Timer t { interval: 5, data: [lb] }";
    assert_eq!(first(lb), "valid");
    assert_eq!(
        warnings(lb),
        ["line 1:30 Timer data lb needs a Load_balancer"]
    );
    let zeros = "Timer t { interval: 00, data: [stats] }";
    assert_eq!(first(zeros), "valid");
    assert_eq!(warnings(zeros).len(), 1, "{:?}", warnings(zeros));
    assert_eq!(
        first("Timer t { interval: (-1), data: [stats] }"),
        "line 1:20 Invalid interval value ((-1)). It needs to resolve to a positive number (number of seconds)"
    );
    let vlan = format!(
        "{IFACE}Iface v {{ index: 0, vlan: 5000, address: 10.0.1.1, netmask: 255.255.255.0 }}"
    );
    assert_eq!(first(&vlan), "valid");
    assert_eq!(
        warnings(&vlan),
        ["line 2:26 Invalid value of vlan (5000). It must be a VLAN tag, an integer from 1 to 4094"]
    );
    assert!(check(&vlan)
        .warnings
        .iter()
        .all(|w| w.severity == crate::nacl::Severity::Warning));
    assert_eq!(
        first("Conntrack c { limit: 10, timeout: { established: { tcp: 30, sctp: 5 } } }"),
        "line 1:60 Invalid Conntrack member sctp"
    );
}

#[test]
fn constants_resolve_across_the_file_and_cycles_are_errors() {
    assert_eq!(
        first(&format!("{IFACE}Filter::IP f {{\n  if (ip.saddr in clients) {{ accept }}\n  drop\n}}\nclients: [10.0.0.0/24, 10.1.0.1-10.1.0.9]\neth0.input: f")),
        "valid"
    );
    let uses =
        |name: &str| format!("Filter::IP f {{\n  if (ip.ttl == {name}) {{ drop }}\n  drop\n}}\n");
    // Constants that are not objects are resolved where they are used.
    assert_eq!(first("a: b\nb: a"), "valid");
    assert_eq!(
        first(&format!("a: b\nb: a\n{}", uses("a"))),
        "line 1:0 The value of a refers to itself"
    );
    assert_eq!(
        first(&format!("c: {{ x: 1 }}\nd: c.y\n{}", uses("d"))),
        "line 2:3 Could not identify c.y"
    );
    assert_eq!(
        first("c: { x: 1, y: nowhere }"),
        "line 1:14 Undefined value nowhere"
    );
}

#[test]
fn syntax_errors_come_alone_and_at_the_offending_token() {
    let v = check("Iface eth0 {\n  index 0\n}\nIface x dhcpp");
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    // As the reference (ANTLR) words them.
    assert_eq!(
        v.errors[0].to_string(),
        "line 2:8 no viable alternative at input 'index 0'"
    );
    assert_eq!(
        first("Iface eth0 { index: 0"),
        "line 1:21 missing '}' at '<EOF>'"
    );
    assert_eq!(first("a: 1 @"), "line 1:5 token recognition error at: '@'");
    // Hostile nesting is an error, not a stack overflow.
    let deep = format!("a: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(first(&deep).contains("nesting deeper than"));
}

#[test]
fn numbers_are_number_plus_as_the_grammar_has_them() {
    // An address, then a top-level integer; a decimal of several Numbers.
    assert_eq!(first("a: 1.2.3.4 5\n"), "valid");
    assert_eq!(first("a: 1 2.3 4\nb: 0 0\n"), "valid");
    // An address's bytes are one Number each.
    assert_eq!(
        first("a: 1.2 3.4.5\n"),
        "line 1:8 extraneous input '.' expecting {<EOF>, Number, '(', Identifier}"
    );
}
