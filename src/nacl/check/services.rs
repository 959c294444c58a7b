//! Conntrack, Load_balancer, Syslog and Timer: elements whose value is an
//! object of known members, nested objects included, extended by dotted
//! assignments at any depth.

use super::values::{is_bool, is_ipv4, is_port, Kind};
use super::{lower, Checker, Member};
use crate::nacl::syntax::{Assignment, Ident, Typed, Value, ValueKind};

const TIMER_DATA: &[&str] = &[
    "timestamp",
    "stats",
    "memory",
    "cpu",
    "lb",
    "stack-sampling",
    "timers",
];
const TIMER_DATA_LIST: &str = "timestamp, stats, memory, cpu, lb, stack-sampling, timers";

/// An assignment into an element, by the path below the element.
#[derive(Clone, Copy)]
struct Extension<'f> {
    path: &'f [Ident<'f>],
    value: &'f Value<'f>,
    /// The whole assignment, e.g. `lb.clients.port: 80`.
    assignment: &'f Assignment<'f>,
}

/// Whether `class`'s member names are case-sensitive: the reference keeps
/// the keys of a Load_balancer, Conntrack or Syslog as written and
/// compares them exactly; a Timer's it lower-cases.
fn exact_keys(class: &str) -> bool {
    matches!(class, "Load_balancer" | "Conntrack" | "Syslog")
}

/// A member name as `class` compares it.
fn key_of<'k>(class: &str, key: &'k str) -> std::borrow::Cow<'k, str> {
    if exact_keys(class) {
        std::borrow::Cow::Borrowed(key)
    } else {
        lower(key)
    }
}

impl<'f> Checker<'f> {
    /// The members of an object written as `value`, plus the extensions
    /// one level below; deeper extensions are returned for the nested
    /// objects. `class` names the element in messages.
    fn members(
        &mut self,
        class: &str,
        value: &'f Value<'f>,
        extensions: &[Extension<'f>],
    ) -> (Vec<Member<'f>>, Vec<Extension<'f>>) {
        let mut members: Vec<Member<'f>> = Vec::new();
        // An object may be given by the name of a constant, whose keys
        // the reference has lower-cased (it keeps an untyped element's so).
        let (value, via_constant) = match &value.kind {
            ValueKind::Name(parts) => match self.lookup(parts) {
                Some(v) => (v, true),
                None => (value, false),
            },
            _ => (value, false),
        };
        let key_of = |class: &str, key: &'f str| {
            if via_constant {
                lower(key)
            } else {
                key_of(class, key)
            }
        };
        let ValueKind::Object(pairs) = &value.kind else {
            let message = match value.as_name() {
                Some(parts) if self.element(parts[0].text).is_none() => {
                    format!("No element with the name {} exists", value.text())
                }
                Some(_) => format!("Element {} must be an object", value.text()),
                None => format!("{class} must be an object"),
            };
            self.error(value.span, message);
            return (members, Vec::new());
        };
        for p in pairs {
            let m = Member {
                lower: key_of(class, p.key.text),
                ..Member::of_pair(&p.key, &p.value)
            };
            if members.iter().any(|o| o.lower == m.lower) {
                self.error(
                    m.span,
                    format!("Member {} has already been set", p.key.text),
                );
            } else {
                members.push(m);
            }
        }
        let mut deeper = Vec::new();
        for e in extensions {
            if e.path.len() > 1 {
                let parent = key_of(class, e.path[0].text);
                if !members.iter().any(|m| m.lower == parent) {
                    // The reference reports this at the value.
                    self.error(
                        e.value.span,
                        format!("Trying to add to a member ({parent}) that doesn't exist"),
                    );
                } else {
                    deeper.push(*e);
                }
                continue;
            }
            // The reference validates an assigned member at its value.
            let m = Member {
                key: &e.path[0],
                lower: key_of(class, e.path[0].text),
                value: e.value,
                span: e.value.span,
            };
            if members.iter().any(|o| o.lower == m.lower) {
                self.error(
                    e.assignment.span(),
                    format!("Member {} has already been set", e.assignment.name()),
                );
            } else {
                members.push(m);
            }
        }
        (members, deeper)
    }

    /// The members of `t`'s object with the element's own assignments.
    fn element_members(
        &mut self,
        class: &str,
        t: &'f Typed<'f>,
    ) -> (Vec<Member<'f>>, Vec<Extension<'f>>) {
        let extensions: Vec<Extension<'f>> = self
            .extensions_of(t.name.text)
            .into_iter()
            .map(|a| Extension {
                path: &a.path[1..],
                value: &a.value,
                assignment: a,
            })
            .collect();
        self.members(class, &t.value, &extensions)
    }

    /// The members of nested object `m`, with the extensions below it;
    /// extensions deeper still are reported as invalid members.
    fn nested(&mut self, class: &str, m: &Member<'f>, deeper: &[Extension<'f>]) -> Vec<Member<'f>> {
        let (members, deeper) = self.nested_deep(class, m, deeper);
        for e in deeper {
            self.error(
                e.value.span,
                format!("Invalid {class} member {}", e.path[0].text),
            );
        }
        members
    }

    /// The members of nested object `m`, with the extensions one level
    /// below it, and those deeper, for `m`'s own nested objects.
    fn nested_deep(
        &mut self,
        class: &str,
        m: &Member<'f>,
        deeper: &[Extension<'f>],
    ) -> (Vec<Member<'f>>, Vec<Extension<'f>>) {
        let below: Vec<Extension<'f>> = deeper
            .iter()
            .filter(|e| key_of(class, e.path[0].text) == m.lower)
            .map(|e| Extension {
                path: &e.path[1..],
                ..*e
            })
            .collect();
        self.members(class, m.value, &below)
    }

    /// Reports members outside `allowed`, keeps the others.
    fn known<'m>(
        &mut self,
        class: &str,
        members: &'m [Member<'f>],
        allowed: &[&str],
        suffix: &str,
    ) -> Vec<&'m Member<'f>> {
        let mut kept = Vec::new();
        // The reference checks the element's own object before the
        // assignments to it: those are judged only if it is clean.
        let errors_before = self.errors.len();
        for m in members {
            let assigned = m.span == m.value.span;
            if assigned && self.errors.len() > errors_before {
                continue;
            }
            if allowed.contains(&m.lower.as_ref()) {
                kept.push(m);
            } else if m.span == m.value.span && matches!(m.value.kind, ValueKind::Object(_)) {
                // An assignment of an object: the reference never
                // validates its name (V6), nor uses it.
            } else {
                self.error(
                    m.span,
                    format!("Invalid {class} member {}{suffix}", m.key.text),
                );
            }
        }
        kept
    }

    pub(super) fn check_conntrack(&mut self, t: &'f Typed<'f>) {
        let (members, deeper) = self.element_members("Conntrack", t);
        for m in self.known(
            "Conntrack",
            &members,
            &["limit", "reserve", "stateful_tcp", "timeout"],
            "",
        ) {
            match m.lower.as_ref() {
                "limit" | "reserve" => {
                    self.expect_kind(&m.lower, m.value, "a positive integer", |k| {
                        matches!(k, Kind::Int(0..))
                    });
                }
                "stateful_tcp" => {
                    self.expect_kind(&m.lower, m.value, "true or false", is_bool);
                }
                _ => {
                    // `c.timeout.established.tcp: 100` reaches two levels
                    // down (the reference's golden example does it).
                    let (states, below) = self.nested_deep("Conntrack", m, &deeper);
                    let suffix = format!(" in {}.{}", t.name.text, m.key.text);
                    for s in self.known(
                        "Conntrack",
                        &states,
                        &["established", "unconfirmed", "confirmed"],
                        &suffix,
                    ) {
                        let protocols = self.nested("Conntrack", s, &below);
                        for p in self.known("Conntrack", &protocols, &["tcp", "udp", "icmp"], "") {
                            let key = format!("timeout.{}.{}", s.lower, p.lower);
                            self.expect_kind(&key, p.value, "a positive integer (seconds)", |k| {
                                matches!(k, Kind::Int(1..))
                            });
                        }
                    }
                }
            }
        }
    }

    /// As the reference: every member's name and value in order, then
    /// (only if those are right) the members it needs, the first missing
    /// one reported at the element.
    pub(super) fn check_load_balancer(&mut self, t: &'f Typed<'f>) {
        let errors_before = self.errors.len();
        let (members, deeper) = self.element_members("Load_balancer", t);
        let class = "Load_balancer";
        let kept = self.known(class, &members, &["layer", "clients", "servers"], "");
        let mut present: Vec<String> = kept.iter().map(|m| m.lower.to_string()).collect();
        let mut duplicate_layer = false;
        for m in kept {
            match m.lower.as_ref() {
                "layer" => {
                    let layer = m.value.text().to_ascii_lowercase();
                    if layer != "tcp" || m.value.as_name().is_none() {
                        self.error(
                            m.value.span,
                            format!("Invalid layer value ({})", m.value.text()),
                        );
                    } else if !self.load_balancer_layers.insert(layer) {
                        duplicate_layer = true;
                    }
                }
                "clients" | "servers" => {
                    let inner = self.nested(class, m, &deeper);
                    let allowed: &[&str] = if m.lower == "clients" {
                        &["iface", "port", "wait_queue_limit", "session_limit"]
                    } else {
                        &["iface", "algorithm", "pool"]
                    };
                    let suffix = format!(" in {}.{}", t.name.text, m.key.text);
                    for c in self.known(class, &inner, allowed, &suffix) {
                        present.push(format!("{}.{}", m.lower, c.lower));
                        self.balancer_member(c);
                    }
                }
                _ => {}
            }
        }
        if self.errors.len() > errors_before {
            return;
        }
        if duplicate_layer {
            self.error(
                t.type_name.span,
                "A TCP Load_balancer has already been defined",
            );
            return;
        }
        let required = [
            "layer",
            "clients",
            "servers",
            "clients.iface",
            "clients.port",
            "servers.iface",
            "servers.algorithm",
            "servers.pool",
        ];
        if let Some(missing) = required.iter().find(|k| !present.iter().any(|p| p == *k)) {
            self.error(
                t.type_name.span,
                format!("Load_balancer member {missing} has not been set"),
            );
        }
    }

    fn balancer_member(&mut self, m: &Member<'f>) {
        let v = m.value;
        match m.lower.as_ref() {
            "iface" => match v.name_text() {
                None => self.error(
                    v.span,
                    format!(
                        "Load_balancer member iface contains an invalid value ({})",
                        v.text()
                    ),
                ),
                Some(n) if !self.may_be_iface(&n) => {
                    self.error(v.span, format!("No Iface with the name {n} exists"))
                }
                Some(_) => {}
            },
            "port" => {
                self.expect_kind("port", v, "a port number", is_port);
            }
            "wait_queue_limit" | "session_limit" => {
                self.expect_kind(&m.lower, v, "a positive integer", |k| {
                    matches!(k, Kind::Int(0..))
                });
            }
            "algorithm" => {
                if !v.text().eq_ignore_ascii_case("round_robin") {
                    self.error(v.span, format!("Invalid algorithm {}", v.text()));
                }
            }
            _ => self.pool(v),
        }
    }

    /// A server pool: a list of `{address, port}`, or the name of one.
    fn pool(&mut self, v: &'f Value<'f>) {
        let list = match &v.kind {
            ValueKind::Name(parts) => {
                self.check_value(v, None);
                self.lookup(parts)
            }
            _ => Some(v),
        };
        let Some(Value {
            kind: ValueKind::List(servers),
            ..
        }) = list
        else {
            if list.is_some() {
                self.error(v.span, format!("Invalid value of pool ({}). It must be a list of objects with address and port", v.text()));
            }
            return;
        };
        let own = std::ptr::eq(list.unwrap_or(v), v);
        for (i, node) in servers.iter().enumerate() {
            // A server may be given by the name of an object constant.
            let s = match &node.kind {
                ValueKind::Name(parts) => match self.element(parts[0].text) {
                    None => {
                        self.error(
                            node.span,
                            format!("No element with the name {} exists", node.text()),
                        );
                        continue;
                    }
                    Some(_) => self.lookup(parts).unwrap_or(node),
                },
                _ => node,
            };
            let ValueKind::Object(pairs) = &s.kind else {
                let message = if node.as_name().is_some() {
                    format!("Element {} must be an object", node.text())
                } else {
                    "Invalid pool value. It needs to be a list of objects containing address, port"
                        .to_string()
                };
                self.error(node.span, message);
                continue;
            };
            let mut seen = Vec::new();
            let errors_before = self.errors.len();
            for p in pairs {
                let key = lower(p.key.text);
                match key.as_ref() {
                    "address" if own => {
                        self.expect_kind("address", &p.value, "an IPv4 address", is_ipv4);
                    }
                    "port" if own => {
                        self.expect_kind("port", &p.value, "a port number", is_port);
                    }
                    "address" | "port" => {}
                    _ => self.error(
                        p.key.span,
                        format!("Invalid member in node {i} in servers.pool"),
                    ),
                }
                seen.push(key);
            }
            let complete = seen.iter().any(|k| k == "address") && seen.iter().any(|k| k == "port");
            if !complete && self.errors.len() == errors_before {
                // At the node as written (a name, or the object).
                self.error(
                    node.span,
                    "An object in a pool needs to specify address, port",
                );
            }
        }
    }

    pub(super) fn check_syslog(&mut self, t: &'f Typed<'f>) {
        let errors_before = self.errors.len();
        let (members, _) = self.element_members("Syslog", t);
        let kept = self.known("Syslog", &members, &["address", "port"], "");
        let complete = kept.len() == 2;
        for m in kept {
            if m.lower == "address" {
                self.expect_kind("address", m.value, "an IPv4 address", is_ipv4);
            } else {
                self.expect_kind("port", m.value, "a port number", is_port);
            }
        }
        if !complete && self.errors.len() == errors_before {
            self.error(
                t.type_name.span,
                "Syslog address and/or port have not been specified",
            );
        }
    }

    pub(super) fn check_timer(&mut self, t: &'f Typed<'f>) {
        let errors_before = self.errors.len();
        let (members, _) = self.element_members("Timer", t);
        let kept = self.known("Timer", &members, &["interval", "data"], "");
        if !kept.iter().any(|m| m.lower == "data") && self.errors.len() == errors_before {
            self.error(t.type_name.span, format!("Invalid value of Timer member data. It needs to be a list containing one or more of these values: {TIMER_DATA_LIST}"));
        }
        for m in kept {
            let v = m.value;
            if m.lower == "interval" {
                let kind = self.check_value(v, None);
                if !kind.fits(|k| matches!(k, Kind::Int(1..))) {
                    let message = format!("Invalid interval value ({}). It needs to resolve to a positive number (number of seconds)", v.text());
                    // The reference tests the resolved text: digits, and
                    // not "0"; so `00` passes it, and is only a warning.
                    let text = self.resolved_text(v);
                    if kind == Kind::Int(0)
                        && text != "0"
                        && text.bytes().all(|b| b.is_ascii_digit())
                    {
                        self.warn(v.span, message);
                    } else {
                        self.error(v.span, message);
                    }
                }
                continue;
            }
            let list = match &v.kind {
                ValueKind::List(_) => Some(v),
                ValueKind::Name(parts) if parts.len() == 1 => match self.element(parts[0].text) {
                    None => {
                        self.error(
                            v.span,
                            format!("No element with the name {} exists", parts[0].text),
                        );
                        None
                    }
                    Some(_) => {
                        let found = self
                            .lookup(parts)
                            .filter(|l| matches!(l.kind, ValueKind::List(_)));
                        if found.is_none() {
                            self.error(
                                v.span,
                                format!("Element {} does not consist of a list", parts[0].text),
                            );
                        }
                        found
                    }
                },
                _ => {
                    self.error(v.span, format!("Invalid data value. It needs to be a list containing one or more of these values: {TIMER_DATA_LIST}"));
                    None
                }
            };
            let Some(Value {
                kind: ValueKind::List(items),
                ..
            }) = list
            else {
                continue;
            };
            for d in items {
                let name = d.text().to_ascii_lowercase();
                if d.as_name().is_none() {
                    self.error(d.span, format!("Invalid data value. It needs to be a list containing one or more of these values: {TIMER_DATA_LIST}"));
                } else if !TIMER_DATA.contains(&name.as_str()) {
                    self.error(
                        d.span,
                        format!(
                            "Invalid data value ({}). Valid values are: {TIMER_DATA_LIST}",
                            d.text()
                        ),
                    );
                } else if name == "lb" && !self.has_load_balancer {
                    // The reference (and its own timers example) accepts it.
                    self.warn(d.span, "Timer data lb needs a Load_balancer");
                }
            }
        }
    }
}
