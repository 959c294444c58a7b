//! Iface and Gateway: the network elements, their members, the chains
//! they push functions onto, and the Gateway's routes.

use std::borrow::Cow;
use std::collections::HashSet;

use super::values::{is_bool, is_int, is_ipv4, Kind};
use super::{lower, Body, Checker, Member, TypeName};
use crate::nacl::syntax::{dotted, Span, Typed, Value, ValueKind};

const IFACE_MEMBERS: &[&str] = &[
    "index",
    "address",
    "netmask",
    "gateway",
    "dns",
    "config",
    "masquerade",
    "vlan",
    "buffer_limit",
    "send_queue_limit",
    "prerouting",
    "input",
    "output",
    "postrouting",
];
const CHAINS: &[&str] = &["prerouting", "input", "output", "postrouting"];
const CONFIGS: &[&str] = &["dhcp", "dhcp-with-fallback", "static"];
const ROUTE_MEMBERS: &[&str] = &["host", "net", "netmask", "nexthop", "iface", "cost"];

/// A Gateway route being gathered: its members by lower-case key.
struct Route<'f> {
    name: String,
    span: Span,
    members: Vec<(Cow<'f, str>, &'f Value<'f>)>,
}

impl Route<'_> {
    fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }
}

impl<'f> Checker<'f> {
    pub(super) fn check_iface(&mut self, t: &'f Typed<'f>) {
        let errors_before = self.errors.len();
        let mut members: Vec<Member<'f>> = Vec::new();
        let mut shorthand = None;
        match &t.value.kind {
            ValueKind::Object(pairs) => {
                for p in pairs {
                    let m = Member::of_pair(&p.key, &p.value);
                    if !IFACE_MEMBERS.contains(&m.lower.as_ref()) {
                        self.error(m.span, format!("Invalid Iface member {}", p.key.text));
                    } else if members.iter().any(|o| o.lower == m.lower) {
                        let message = if CHAINS.contains(&m.lower.as_ref()) {
                            format!("Iface chain {} has already been set", m.lower)
                        } else {
                            format!("Iface member {} has already been set", m.lower)
                        };
                        self.error(m.span, message);
                    } else {
                        members.push(m);
                    }
                }
            }
            ValueKind::Name(parts)
                if parts.len() == 1 && CONFIGS.contains(&lower(parts[0].text).as_ref()) =>
            {
                shorthand = Some(&t.value);
            }
            ValueKind::Name(parts) => {
                self.error(t.value.span, format!("Invalid Iface value {}", dotted(parts)));
            }
            _ => self.error(
                t.value.span,
                "An Iface has to contain key value pairs, or be set to a configuration type (dhcp, dhcp-with-fallback, static)",
            ),
        }
        // The reference reads the object, pushing its chains, before the
        // assignments.
        self.push_chains(&members);
        if self.errors.len() > errors_before {
            return;
        }
        let from_object = members.len();
        for a in self.extensions_of(t.name.text) {
            if a.path.len() != 2 {
                self.error(a.span(), format!("Invalid Iface member {}", a.name()));
                continue;
            }
            let key = &a.path[1];
            let lower = lower(key.text);
            if !IFACE_MEMBERS.contains(&lower.as_ref()) {
                self.error(a.span(), format!("Invalid Iface member {}", key.text));
            } else if members.iter().any(|o| o.lower == lower)
                || (lower == "config" && shorthand.is_some())
            {
                if CHAINS.contains(&lower.as_ref()) {
                    self.error(
                        a.value.span,
                        format!("Iface chain {lower} has already been set"),
                    );
                } else {
                    self.error(a.span(), format!("Member {lower} has already been set"));
                }
            } else {
                members.push(Member {
                    key,
                    lower,
                    value: &a.value,
                    span: a.span(),
                });
            }
        }
        self.push_chains(&members[from_object..]);
        self.iface_members(t, &members, shorthand, errors_before);
    }

    fn push_chains(&mut self, members: &[Member<'f>]) {
        for m in members {
            if CHAINS.contains(&m.lower.as_ref()) {
                self.push_chain(m.value, false);
            }
        }
    }

    /// The reference checks an Iface in stages: its members' names and
    /// chains, then the members it needs, then their values; a stage runs
    /// only if the ones before found nothing, so the first error is the
    /// reference's.
    fn iface_members(
        &mut self,
        t: &'f Typed<'f>,
        members: &[Member<'f>],
        shorthand: Option<&'f Value<'f>>,
        errors_before: usize,
    ) {
        let get = |key: &str| members.iter().find(|m| m.lower == key);
        if self.errors.len() > errors_before || !self.iface_required(t, members, shorthand) {
            return;
        }
        let mut index = None;
        for m in members {
            let v = m.value;
            match m.lower.as_ref() {
                "index" => {
                    index = match self.check_value(v, None) {
                        Kind::Unknown => None,
                        // The reference takes int() of a VLAN's index and
                        // crashes on the list a range or list resolves to.
                        Kind::Range | Kind::List if get("vlan").is_some() => {
                            self.error(v.span, format!("Invalid value of index ({}). It must be an integer or a MAC address string", v.text()));
                            None
                        }
                        kind => {
                            let mac = kind == Kind::Str && is_mac(v.text().trim_matches('"'));
                            if !matches!(kind, Kind::Int(_)) && !mac {
                                // The reference takes any index value.
                                self.warn(v.span, format!("Invalid value of index ({}). It must be an integer or a MAC address string", v.text()));
                            }
                            // It compares the transpiled texts, whatever
                            // their kind: (-0) is not 0, "AA" is not "aa".
                            self.transpiled(v).text()
                        }
                    };
                }
                "address" | "netmask" | "gateway" | "dns" => {
                    self.expect_kind(&m.lower, v, "an IPv4 address", is_ipv4);
                }
                "masquerade" => {
                    let kind = self.check_value(v, None);
                    if !kind.fits(is_bool) {
                        self.error(
                            v.span,
                            "Invalid masquerade value. Must be set to true or false",
                        );
                    }
                }
                "vlan" => {
                    self.expect_kind("vlan", v, "a VLAN tag, an integer from 1 to 4094", |k| {
                        matches!(k, Kind::Int(1..=4094))
                    });
                }
                "buffer_limit" | "send_queue_limit" => {
                    self.expect_kind(&m.lower, v, "a positive integer", |k| {
                        matches!(k, Kind::Int(1..))
                    });
                }
                _ => {}
            }
        }
        // A NIC's index is unique among plain Ifaces; VLANs share theirs.
        if let (Some(index), Some(m), None) = (index, get("index"), get("vlan")) {
            if !self.iface_indexes.insert(index.clone()) {
                self.error(
                    m.value.span,
                    format!("Another Iface has been defined with index {index}"),
                );
            }
        }
    }

    /// The members an Iface needs, by its configuration; `false` if one
    /// is missing or wrong.
    fn iface_required(
        &mut self,
        t: &'f Typed<'f>,
        members: &[Member<'f>],
        shorthand: Option<&'f Value<'f>>,
    ) -> bool {
        let get = |key: &str| members.iter().find(|m| m.lower == key);
        if get("index").is_none() {
            self.error(
                t.value.span,
                "An index needs to be specified for all Ifaces",
            );
            return false;
        }
        let config = get("config").map(|m| m.value).or(shorthand);
        let config_name = config.and_then(|v| v.as_name()).filter(|p| p.len() == 1);
        if let Some(v) = config {
            if !config_name.is_some_and(|p| CONFIGS.contains(&lower(p[0].text).as_ref())) {
                self.error(v.span, format!("Invalid config value {}", v.text()));
                return false;
            }
        }
        // Only a VLAN needs a network configuration; a plain Iface may
        // be a bare NIC (e.g. only its limits, or the VLANs' parent).
        if get("vlan").is_none() {
            return true;
        }
        let is_dhcp = config_name.is_some_and(|p| p[0].text.eq_ignore_ascii_case("dhcp"));
        if !is_dhcp && (get("address").is_none() || get("netmask").is_none()) {
            self.error(t.value.span, "The members address and netmask must be set for every Iface if the Iface configuration hasn't been set to dhcp");
            return false;
        }
        if let (true, Some(config)) = (is_dhcp, config) {
            if ["address", "netmask", "gateway", "dns"]
                .iter()
                .any(|k| get(k).is_some())
            {
                self.error(config.span, "An Iface with config set to dhcp should not specify address, netmask, gateway or dns");
                return false;
            }
        }
        if get("buffer_limit").is_some() || get("send_queue_limit").is_some() {
            self.error(t.value.span, "The members send_queue_limit and buffer_limit can not be set on an Iface that is a vlan");
            return false;
        }
        true
    }

    /// Functions pushed onto a chain (an Iface's, or the Gateway's
    /// `forward`): one name or a list of names, each a function.
    fn push_chain(&mut self, v: &'f Value<'f>, gateway: bool) {
        let names: Vec<&'f Value<'f>> = match &v.kind {
            ValueKind::Name(_) => vec![v],
            ValueKind::List(values) => {
                let mut names = Vec::new();
                for x in values {
                    if x.as_name().is_some() {
                        names.push(x);
                    } else {
                        self.error(x.span, format!("This is not supported: {}", v.text()));
                    }
                }
                names
            }
            _ => {
                self.error(v.span, format!("This is not supported: {}", v.text()));
                return;
            }
        };
        for x in names {
            let name = x.name_text().unwrap_or_default();
            match self.function(&name) {
                None => self.error(x.span, format!("No function with the name {name} exists")),
                Some((_, TypeName::Nat, ..)) if gateway => self.error(
                    x.span,
                    "A Nat function cannot be pushed onto a Gateway's forward chain",
                ),
                Some((i, ..)) => {
                    self.pushed.insert(i);
                }
            }
        }
    }

    pub(super) fn check_gateway(&mut self, t: &'f Typed<'f>) {
        let errors_before = self.errors.len();
        let mut routes: Vec<Route<'f>> = Vec::new();
        let mut others: Vec<(Cow<'f, str>, &'f Value<'f>)> = Vec::new();
        let mut listed = false;
        match &t.value.kind {
            ValueKind::Object(pairs) => {
                for p in pairs {
                    let lower = lower(p.key.text);
                    let is_other = lower == "send_time_exceeded" || lower == "forward";
                    if !is_other && !matches!(p.value.kind, ValueKind::Object(_)) {
                        self.error(p.key.span, format!("Invalid Gateway member {}", p.key.text));
                    } else if is_other {
                        if others.iter().any(|(k, _)| *k == lower) {
                            self.error(p.key.span, format!("{lower} has already been set"));
                        } else {
                            others.push((lower, &p.value));
                        }
                    } else if routes.iter().any(|r| r.name == lower) {
                        self.error(p.key.span, format!("Route {lower} has already been set"));
                    } else {
                        let route = self.route(&lower, &p.value);
                        routes.push(route);
                    }
                }
            }
            ValueKind::List(values) => {
                listed = true;
                for (i, x) in values.iter().enumerate() {
                    if matches!(x.kind, ValueKind::Object(_)) {
                        let route = self.route(&i.to_string(), x);
                        routes.push(route);
                    } else {
                        self.error(x.span, "A Gateway that constitutes a list must be a list of objects (containing key value pairs)");
                    }
                }
            }
            _ => self.error(t.value.span, "A Gateway must contain key value pairs (in which each pair's value is an object), or it must contain a list of objects"),
        }
        for a in self.extensions_of(t.name.text) {
            let member = lower(a.path[1].text);
            if a.path.len() > 3 {
                self.error(a.span(), format!("Invalid Gateway member {}", a.name()));
            } else if listed {
                self.error(
                    a.span(),
                    format!(
                        "Trying to access a named member in a Gateway without named members ({})",
                        a.name()
                    ),
                );
            } else if a.path.len() == 2 && (member == "send_time_exceeded" || member == "forward") {
                if others.iter().any(|(k, _)| *k == member) {
                    self.error(
                        a.value.span,
                        format!("Gateway member {member} has already been set"),
                    );
                } else {
                    others.push((member, &a.value));
                }
            } else if a.path.len() == 2 {
                if routes.iter().any(|r| r.name == member) {
                    self.error(
                        a.span(),
                        format!("Gateway member {member} has already been set"),
                    );
                } else if !matches!(a.value.kind, ValueKind::Object(_)) {
                    self.error(
                        a.value.span,
                        "A Gateway member's value needs to contain key value pairs",
                    );
                } else {
                    let route = self.route(&member, &a.value);
                    routes.push(route);
                }
            } else {
                let key = lower(a.path[2].text);
                let Some(r) = routes.iter().position(|r| r.name == member) else {
                    self.error(
                        a.span(),
                        format!("No member named {member} in Gateway {}", t.name.text),
                    );
                    continue;
                };
                if routes[r].has(&key) {
                    self.error(
                        a.span(),
                        format!("Member {key} in route {member} has already been set"),
                    );
                } else if !ROUTE_MEMBERS.contains(&key.as_ref()) {
                    self.error(a.span(), format!("{key} is not a valid Gateway route member. Valid members are: host, net, netmask, nexthop, iface, cost"));
                } else {
                    self.route_member(&key, &a.value);
                    routes[r].members.push((key, &a.value));
                }
            }
        }
        if self.errors.len() > errors_before {
            return;
        }
        for (key, v) in others {
            if key == "forward" {
                self.push_chain(v, true);
            } else if !self.check_value(v, None).fits(is_bool) {
                self.error(
                    v.span,
                    format!(
                        "Invalid value of send_time_exceeded ({}). Must be set to true or false",
                        // The reference shows the value it transpiled; where
                        // it cannot (a list, a port number) it crashes.
                        self.transpiled(v).text().unwrap_or_else(|| v.text())
                    ),
                );
            }
        }
        if self.errors.len() > errors_before {
            return;
        }
        let mut vlan_routes = None;
        for r in &routes {
            if !r.has("iface") || !r.has("netmask") || !(r.has("net") || r.has("host")) {
                self.error(
                    r.span,
                    "A Gateway route must specify iface, netmask and either net or host",
                );
            }
            let iface = r
                .members
                .iter()
                .find(|(k, _)| k == "iface")
                .map(|(_, v)| *v);
            if let Some(v) = iface {
                let Some(i) = v
                    .name_text()
                    .and_then(|n| self.is_typed(&n, TypeName::Iface))
                else {
                    continue;
                };
                // The reference processes the Iface here if it has not yet:
                // its errors come before the Gateway's next ones.
                self.check_element_once(i);
                let vlan = self.iface_is_vlan(i);
                match vlan_routes {
                    None => vlan_routes = Some(vlan),
                    // Reported at the Gateway, as the reference does.
                    Some(first) if first != vlan => self.error(
                        t.type_name.span,
                        "All iface members in a Gateway's routes must be of the same type (either only Ifaces with the vlan member set or only regular Ifaces)",
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// A route object: its members, each checked.
    fn route(&mut self, name: &str, v: &'f Value<'f>) -> Route<'f> {
        let mut route = Route {
            name: name.to_string(),
            span: v.span,
            members: Vec::new(),
        };
        let ValueKind::Object(pairs) = &v.kind else {
            return route;
        };
        for p in pairs {
            let key = lower(p.key.text);
            if route.has(&key) {
                self.error(
                    p.key.span,
                    format!("Member {key} has already been set for route {name}"),
                );
            } else if !ROUTE_MEMBERS.contains(&key.as_ref()) {
                self.error(p.key.span, format!("{} is not a valid Gateway route member. Valid members are: host, net, netmask, nexthop, iface, cost", p.key.text));
            } else {
                self.route_member(&key, &p.value);
                route.members.push((key, &p.value));
            }
        }
        route
    }

    fn route_member(&mut self, key: &str, v: &'f Value<'f>) {
        match key {
            "iface" => {
                let text = v.name_text().unwrap_or_else(|| v.text().into());
                if v.as_name().is_none() {
                    self.error(
                        v.span,
                        format!("Gateway route member iface contains an invalid value ({text})"),
                    );
                } else if !self.may_be_iface(&text) {
                    self.error(v.span, format!("No Iface with the name {text} exists"));
                }
            }
            "cost" => {
                self.expect_kind(key, v, "an integer", is_int);
            }
            _ => {
                self.expect_kind(key, v, "an IPv4 address", is_ipv4);
            }
        }
    }

    /// Whether Iface element `i` sets `vlan`, in its object or by an
    /// assignment.
    fn iface_is_vlan(&self, i: usize) -> bool {
        let Body::Typed(_, t) = self.elements[i].body else {
            return false;
        };
        let in_object = match &t.value.kind {
            ValueKind::Object(pairs) => pairs
                .iter()
                .any(|p| p.key.text.eq_ignore_ascii_case("vlan")),
            _ => false,
        };
        in_object
            || self
                .extensions_of(t.name.text)
                .iter()
                .any(|a| a.path.len() == 2 && a.path[1].text.eq_ignore_ascii_case("vlan"))
    }
}

/// `aa:bb:cc:dd:ee:ff`
fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) type IfaceIndexes = HashSet<String>;
