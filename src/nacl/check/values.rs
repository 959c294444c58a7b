//! Values: literal bounds, ranges, and what a name resolves to (a
//! constant, an element's member, a predefined name or a packet property).

use super::{lower, Body, Checker, Subtype};
use crate::nacl::syntax::{dotted, Ident, Value, ValueKind};

/// What a value resolves to, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Int(i64),
    Decimal,
    Ipv4,
    Cidr,
    Bool(bool),
    Range,
    Str,
    Object,
    List,
    /// `tcp`, `udp`, `icmp`, `ip` as values.
    Protocol,
    IcmpType,
    CtState,
    TcpFlag,
    Algorithm,
    /// `oif`, `oifname`, `iif`, `iifname`.
    Interface,
    /// A packet property such as `tcp.dport`.
    Property,
    /// Not resolvable; its error has been reported where it is written.
    Unknown,
}

impl Kind {
    /// Whether a value of this kind may be where `want` is asked for.
    pub fn fits(self, want: fn(Kind) -> bool) -> bool {
        self == Kind::Unknown || want(self)
    }
}

/// The function a value is used in: its subtype, as parsed and as written.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub subtype: Subtype,
    pub written: &'a str,
}

/// The properties of each packet object, and its name in messages.
fn properties(object: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match object {
        "ip" => (
            "IP",
            &[
                "version",
                "hdrlength",
                "dscp",
                "ecn",
                "length",
                "id",
                "frag-off",
                "ttl",
                "protocol",
                "checksum",
                "saddr",
                "daddr",
            ],
        ),
        "tcp" => (
            "TCP",
            &[
                "sport", "dport", "sequence", "ackseq", "doff", "reserved", "flags", "window",
                "checksum", "urgptr",
            ],
        ),
        "udp" => ("UDP", &["sport", "dport", "length", "checksum"]),
        "icmp" => ("ICMP", &["type"]),
        "ct" => ("CT", &["state"]),
        _ => return None,
    })
}

/// Which packet objects a function of `subtype` may test.
fn may_test(subtype: Subtype, object: &str) -> bool {
    match object {
        "ip" | "ct" => true,
        "tcp" => subtype == Subtype::Tcp,
        "udp" => subtype == Subtype::Udp,
        "icmp" => subtype == Subtype::Icmp,
        _ => false,
    }
}

fn predefined(name: &str) -> Option<Kind> {
    Some(match name {
        "ssh" => Kind::Int(22),
        "dns" => Kind::Int(53),
        "http" => Kind::Int(80),
        "https" => Kind::Int(443),
        "tcp" | "udp" | "icmp" | "ip" => Kind::Protocol,
        "echo-reply"
        | "destination-unreachable"
        | "redirect"
        | "echo-request"
        | "time-exceeded"
        | "parameter-problem"
        | "timestamp-request"
        | "timestamp-reply" => Kind::IcmpType,
        "established" | "new" | "related" | "invalid" => Kind::CtState,
        "fin" | "syn" | "rst" | "psh" | "ack" | "urg" | "cwr" | "ece" | "ns" => Kind::TcpFlag,
        "round_robin" => Kind::Algorithm,
        // Interfaces of the packet (IncludeOS stack calls), undocumented.
        "oif" | "oifname" | "iif" | "iifname" => Kind::Interface,
        _ => return None,
    })
}

/// The C++ the reference transpiles a predefined name to (its
/// `predefined_values_cpp`, keyed in lower case). `None`: not predefined;
/// the named ports are Python integers, which a message cannot hold.
fn predefined_cpp(name: &str) -> Option<Transpiled> {
    let text = match name {
        "ssh" => return Some(Transpiled::Number(22)),
        "dns" => return Some(Transpiled::Number(53)),
        "http" => return Some(Transpiled::Number(80)),
        "https" => return Some(Transpiled::Number(443)),
        "tcp" => "Protocol::TCP",
        "udp" => "Protocol::UDP",
        "icmp" => "Protocol::ICMPv4",
        "ip" => "Protocol::IPv4",
        "echo-reply" => "icmp4::Type::ECHO_REPLY",
        "destination-unreachable" => "icmp4::Type::DEST_UNREACHABLE",
        "redirect" => "icmp4::Type::REDIRECT",
        "echo-request" => "icmp4::Type::ECHO",
        "time-exceeded" => "icmp4::Type::TIME_EXCEEDED",
        "parameter-problem" => "icmp4::Type::PARAMETER_PROBLEM",
        "timestamp-request" => "icmp4::Type::TIMESTAMP",
        "timestamp-reply" => "icmp4::Type::TIMESTAMP_REPLY",
        "established" => "Conntrack::State::ESTABLISHED",
        "new" => "Conntrack::State::NEW",
        "related" => "Conntrack::State::RELATED",
        "invalid" => "Conntrack::State::INVALID",
        "fin" => "tcp::Flag::FIN",
        "syn" => "tcp::Flag::SYN",
        "rst" => "tcp::Flag::RST",
        "psh" => "tcp::Flag::PSH",
        "ack" => "tcp::Flag::ACK",
        "urg" => "tcp::Flag::URG",
        "cwr" => "tcp::Flag::CWR",
        "ece" => "tcp::Flag::ECE",
        "ns" => "tcp::Flag::NS",
        "round_robin" => "round_robin",
        "oif" => "stack2.oif()",
        "oifname" => "stack2.oifname()",
        "iif" => "stack.iif()",
        "iifname" => "stack.iifname()",
        _ => return None,
    };
    Some(Transpiled::Text(text.to_owned()))
}

/// What the reference's value transpiler makes of a value outside a
/// function: the C++ text some of its messages print.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transpiled {
    /// C++ source, e.g. `IP4::addr{10,0,0,1}`.
    Text(String),
    /// A Python integer (a named port): joining it to a message crashes.
    Number(i64),
    /// A Python list (a range, list or object): likewise.
    List,
    /// An error, reported where the value is checked.
    Failed,
}

impl Transpiled {
    /// The text as the reference shows it; a Python integer as its digits.
    pub fn text(&self) -> Option<String> {
        match self {
            Transpiled::Text(t) => Some(t.clone()),
            Transpiled::Number(n) => Some(n.to_string()),
            Transpiled::List | Transpiled::Failed => None,
        }
    }
}

/// An integer as written (`42`, `(-5)`); too large saturates.
pub(crate) fn integer(text: &str) -> i64 {
    match text.strip_prefix("(-").and_then(|t| t.strip_suffix(')')) {
        Some(digits) => digits.parse::<i64>().map_or(i64::MIN, |n| -n),
        None => text.parse().unwrap_or(i64::MAX),
    }
}

/// Whether every byte of `a.b.c.d` is at most 255.
fn bytes_in_bounds(addr: &str) -> bool {
    addr.split('.')
        .all(|b| b.parse::<u64>().is_ok_and(|n| n <= 255))
}

impl<'f> Checker<'f> {
    /// The text `v` stands for once its names are followed, as the
    /// reference's messages and some of its tests see it (`00`, not 0).
    pub fn resolved_text(&self, v: &'f Value<'f>) -> String {
        let mut v = v;
        // Bounded: a cycle of names is reported elsewhere.
        for _ in 0..64 {
            match v.as_name().and_then(|parts| self.lookup(parts)) {
                Some(next) => v = next,
                None => break,
            }
        }
        v.text()
    }

    /// What the reference transpiles `v` to outside a function (its
    /// `Cpp_value_transpiler.transpile` without a subtype), names followed.
    pub fn transpiled(&self, v: &'f Value<'f>) -> Transpiled {
        let mut v = v;
        // Bounded: a cycle of names is reported elsewhere.
        for _ in 0..64 {
            let Some(parts) = v.as_name() else {
                return transpiled_literal(v);
            };
            if let Some(next) = self.element(parts[0].text).and_then(|_| self.lookup(parts)) {
                v = next;
                continue;
            }
            if self.element(parts[0].text).is_some() || parts.len() > 1 {
                return Transpiled::Failed;
            }
            return predefined_cpp(&lower(parts[0].text)).unwrap_or(Transpiled::Failed);
        }
        Transpiled::Failed
    }

    /// Checks `v` where it is written and says what it resolves to.
    pub fn check_value(&mut self, v: &'f Value<'f>, scope: Option<Scope<'_>>) -> Kind {
        match &v.kind {
            ValueKind::Integer(t) => Kind::Int(integer(t)),
            ValueKind::Decimal(_) => Kind::Decimal,
            ValueKind::Str(_) => Kind::Str,
            ValueKind::Bool(b) => Kind::Bool(*b),
            ValueKind::Ipv4(t) => {
                if !bytes_in_bounds(t) {
                    self.error(
                        v.span,
                        format!("IPv4 addr {t} contains bytes greater than 255"),
                    );
                }
                Kind::Ipv4
            }
            ValueKind::Cidr(t) => {
                let (addr, mask) = t.split_once('/').unwrap_or((t, "0"));
                if !bytes_in_bounds(addr) {
                    self.error(
                        v.span,
                        format!("IPv4 cidr {t} contains bytes greater than 255"),
                    );
                } else if mask.parse::<u64>().map_or(true, |m| m > 32) {
                    self.error(v.span, format!("IPv4 cidr mask in {t} is greater than 32"));
                }
                Kind::Cidr
            }
            ValueKind::Range(a, b) => {
                let (ka, kb) = (self.check_value(a, scope), self.check_value(b, scope));
                let same = matches!(
                    (ka, kb),
                    (Kind::Int(_), Kind::Int(_))
                        | (Kind::Ipv4, Kind::Ipv4)
                        | (Kind::Decimal, Kind::Decimal)
                );
                if !same {
                    self.error(
                        v.span,
                        format!(
                            "A range's values need to be of the same type ({})",
                            v.text()
                        ),
                    );
                }
                Kind::Range
            }
            ValueKind::Object(pairs) => {
                for p in pairs {
                    self.check_value(&p.value, scope);
                }
                Kind::Object
            }
            ValueKind::List(values) => {
                for x in values {
                    self.check_value(x, scope);
                }
                Kind::List
            }
            ValueKind::Name(parts) => self.resolve_name(v, parts, scope),
        }
    }

    fn resolve_name(
        &mut self,
        v: &'f Value<'f>,
        parts: &'f [Ident<'f>],
        scope: Option<Scope<'_>>,
    ) -> Kind {
        let root = parts[0].text;
        if let Some(i) = self.element(root) {
            let target = match self.elements[i].body {
                Body::Function(..) => {
                    let message = if parts.len() == 1 {
                        format!("The name of a function ({root}) cannot be used as a value name in a comparison")
                    } else {
                        format!("A function ({root}) does not have any named attributes")
                    };
                    self.error(v.span, message);
                    return Kind::Unknown;
                }
                Body::Broken => return Kind::Unknown,
                _ if parts.len() == 1 => self.elements[i].body.value(),
                _ => {
                    let found = self.lookup(parts);
                    if found.is_none() {
                        self.error(v.span, format!("Could not identify {}", dotted(parts)));
                    }
                    found
                }
            };
            let Some(target) = target else {
                return Kind::Unknown;
            };
            // A constant that is not an object is checked where it is
            // used, as the reference does; the rest was checked already.
            let loud = matches!(self.elements[i].body, Body::Constant(a)
                if a.path.len() == 1 && !matches!(a.value.kind, ValueKind::Object(_)));
            return self.resolve_quietly(i, target, scope, loud);
        }
        let root_lower = lower(root);
        if parts.len() == 1 {
            return predefined(&root_lower).unwrap_or_else(|| {
                self.error(v.span, format!("Undefined value {root}"));
                Kind::Unknown
            });
        }
        let Some((shown, props)) = properties(&root_lower) else {
            self.error(v.span, format!("Undefined value {root}"));
            return Kind::Unknown;
        };
        let Some(scope) = scope else {
            self.error(
                v.span,
                format!("Trying to transpile protocol object ({root}), but the function's subtype has not been given"),
            );
            return Kind::Unknown;
        };
        if !may_test(scope.subtype, &root_lower) {
            self.error(
                v.span,
                format!(
                    "A function of subtype {} cannot test on {root} properties",
                    scope.written
                ),
            );
        } else if parts.len() > 2 {
            self.error(
                v.span,
                format!("Undefined protocol object properties: {}", dotted(parts)),
            );
        } else {
            let prop = lower(parts[1].text);
            if !props.contains(&prop.as_ref()) {
                self.error(v.span, format!("No property named {prop} in {shown}"));
            }
        }
        Kind::Property
    }

    /// What the value of element `i` (or a member of it) resolves to, its
    /// errors already reported where it is written.
    fn resolve_quietly(
        &mut self,
        i: usize,
        target: &'f Value<'f>,
        scope: Option<Scope<'_>>,
        loud: bool,
    ) -> Kind {
        if self.resolving.contains(&i) {
            let (span, name) = (self.elements[i].name_span, self.elements[i].name.clone());
            let quiet = std::mem::take(&mut self.quiet);
            self.error(span, format!("The value of {name} refers to itself"));
            self.quiet = quiet;
            return Kind::Unknown;
        }
        let quiet = u32::from(!loud);
        // A constant used in many places is checked once per scope: its
        // errors (at its own positions) are the same every time.
        let key = (
            target as *const Value<'f> as usize,
            scope.map(|s| s.subtype),
            self.quiet + quiet > 0,
        );
        if let Some(kind) = self.resolved.get(&key) {
            return *kind;
        }
        self.resolving.push(i);
        self.quiet += quiet;
        let kind = self.check_value(target, scope);
        self.quiet -= quiet;
        self.resolving.pop();
        self.resolved.insert(key, kind);
        kind
    }

    /// A value that should be one of a few kinds; `what` names them in the
    /// warning, e.g. "an IPv4 address". The reference takes any value
    /// there, so a wrong one is a warning, never an error.
    pub fn expect_kind(
        &mut self,
        key: &str,
        v: &'f Value<'f>,
        what: &str,
        want: fn(Kind) -> bool,
    ) -> Kind {
        let kind = self.check_value(v, None);
        // The reference never checks these kinds and ranges: a warning.
        if !kind.fits(want) {
            self.warn(
                v.span,
                format!("Invalid value of {key} ({}). It must be {what}", v.text()),
            );
        }
        kind
    }
}

pub(crate) fn is_ipv4(k: Kind) -> bool {
    k == Kind::Ipv4
}

pub(crate) fn is_int(k: Kind) -> bool {
    matches!(k, Kind::Int(_))
}

pub(crate) fn is_bool(k: Kind) -> bool {
    matches!(k, Kind::Bool(_))
}

pub(crate) fn is_port(k: Kind) -> bool {
    matches!(k, Kind::Int(0..=65535))
}

/// A literal as the reference transpiles it: numbers as written, an IPv4
/// address or CIDR as the IncludeOS constructor, a string with its quotes.
fn transpiled_literal(v: &Value) -> Transpiled {
    match &v.kind {
        ValueKind::Integer(t) | ValueKind::Decimal(t) => Transpiled::Text(t.to_string()),
        ValueKind::Str(t) => Transpiled::Text(t.to_string()),
        ValueKind::Bool(b) => Transpiled::Text(b.to_string()),
        ValueKind::Ipv4(t) => Transpiled::Text(format!("IP4::addr{{{}}}", t.replace('.', ","))),
        ValueKind::Cidr(t) => {
            Transpiled::Text(format!("ip4::Cidr{{{}}}", t.replace(['.', '/'], ",")))
        }
        ValueKind::Range(..) | ValueKind::Object(_) | ValueKind::List(_) => Transpiled::List,
        ValueKind::Name(_) => Transpiled::Failed,
    }
}
