//! The NaCl checker: every semantic rule of spec/nacl.md over a parsed
//! file, with the reference transpiler's messages and positions.
//!
//! It runs as the reference does: first every top-level element is
//! registered in file order (names, types, singletons), then each element
//! is checked in the order Python 2.7 iterates the reference's dict of
//! elements (`py2dict`), the functions last, each function's callees where
//! they are called. Unlike the reference, which stops at its first error,
//! it goes on and reports every error, in the order the reference would
//! meet them (see `Checker::rank`). Each value of the file is checked once
//! where it is written; a name that refers to it resolves quietly, so one
//! mistake is one error.

mod functions;
mod iface;
mod py2dict;
mod services;
mod values;

use std::borrow::Cow;
use std::collections::HashMap;

use super::syntax::{Assignment, File, Function, Ident, Item, Span, Typed, Value, ValueKind};
use super::Diagnostic;

/// The errors of a parsed file in the order the reference meets them
/// (its first error first), each once; and the warnings, unsorted.
pub fn check(file: &File) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut c = Checker::new(file);
    c.register();
    // The reference registers every element before it checks any: a
    // name error anywhere comes before any other.
    if c.errors.is_empty() {
        c.check_elements();
    }
    // Within one stretch of the reference's walk (one element, one
    // function body between calls) errors come in the order of the file.
    let mut ranked: Vec<(u32, Diagnostic)> = c.error_ranks.into_iter().zip(c.errors).collect();
    ranked.sort_by_key(|(rank, d)| (*rank, d.line, d.column));
    // A callee walked at several calls repeats its errors: the first counts.
    let mut seen = std::collections::HashSet::new();
    let errors = ranked
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| seen.insert((d.line, d.column, d.message.clone())))
        .collect();
    (errors, c.warnings)
}

/// The top-level types (lower case) and what checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeName {
    Iface,
    Gateway,
    Conntrack,
    LoadBalancer,
    Syslog,
    Timer,
    Filter,
    Nat,
    /// A function type the reference registers but has no actions for.
    Rewrite,
}

impl TypeName {
    fn parse(text: &str) -> Option<Self> {
        Some(match lower(text).as_ref() {
            "iface" => Self::Iface,
            "gateway" => Self::Gateway,
            "conntrack" => Self::Conntrack,
            "load_balancer" => Self::LoadBalancer,
            "syslog" => Self::Syslog,
            "timer" => Self::Timer,
            "filter" => Self::Filter,
            "nat" => Self::Nat,
            "rewrite" => Self::Rewrite,
            _ => return None,
        })
    }

    fn is_singleton(self) -> bool {
        matches!(self, Self::Gateway | Self::Conntrack | Self::Syslog)
    }

    fn is_function(self) -> bool {
        matches!(self, Self::Filter | Self::Nat | Self::Rewrite)
    }
}

/// A function's subtype: which packet it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Subtype {
    Ip,
    Tcp,
    Udp,
    Icmp,
}

impl Subtype {
    fn parse(text: &str) -> Option<Self> {
        Some(match lower(text).as_ref() {
            "ip" => Self::Ip,
            "tcp" => Self::Tcp,
            "udp" => Self::Udp,
            "icmp" => Self::Icmp,
            _ => return None,
        })
    }

    /// The subtype as the reference names a nested function's.
    fn lower_name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
        }
    }

    /// Whether a function of this subtype may nest or call one of `inner`.
    fn may_contain(self, inner: Subtype) -> bool {
        self == Self::Ip || inner == Self::Ip || inner == self
    }
}

/// One top-level element, under the name the reference keys it by (a
/// dotted assignment's whole name).
pub(crate) struct Element<'f> {
    pub name: Cow<'f, str>,
    pub name_span: Span,
    pub body: Body<'f>,
}

pub(crate) enum Body<'f> {
    Constant(&'f Assignment<'f>),
    Typed(TypeName, &'f Typed<'f>),
    Function(TypeName, Subtype, &'f Function<'f>),
    /// A function whose subtype is none the reference knows: it fails
    /// when transpiled (with the functions, last) or called.
    OddFunction(&'f Function<'f>),
    /// Registered with an error (unknown type or subtype): its name is
    /// taken, nothing more is checked.
    Broken,
}

impl<'f> Body<'f> {
    /// The value this element stands for, if it has one.
    fn value(&self) -> Option<&'f Value<'f>> {
        match self {
            Body::Constant(a) => Some(&a.value),
            Body::Typed(_, t) => Some(&t.value),
            _ => None,
        }
    }
}

pub(crate) struct Checker<'f> {
    file: &'f File<'f>,
    pub elements: Vec<Element<'f>>,
    by_name: HashMap<Cow<'f, str>, usize>,
    /// Dotted assignments by the element they extend (first name part).
    extensions: HashMap<&'f str, Vec<usize>>,
    /// The functions (by element index) pushed onto a chain.
    pub pushed: std::collections::HashSet<usize>,
    /// The (index, vlan) of each Iface checked so far.
    iface_indexes: iface::IfaceIndexes,
    load_balancer_layers: std::collections::HashSet<String>,
    has_load_balancer: bool,
    pub errors: Vec<Diagnostic>,
    /// The `rank` at which each of `errors` was found.
    error_ranks: Vec<u32>,
    /// Which stretch of the reference's walk is being emulated: bumped at
    /// each element and at each entry to and return from a called
    /// function, so that sorting errors by it (then by position) gives
    /// the order in which the reference, which stops at its first error,
    /// would meet them.
    rank: u32,
    /// The functions whose bodies are being walked, outermost first: a
    /// call of one of them is endless recursion in the reference.
    pub calls: Vec<usize>,
    /// The (function, scope) pairs walked at a call already: a second
    /// walk would find the same errors, later.
    pub walked: std::collections::HashSet<(usize, Subtype)>,
    /// Each element's place in the reference's dict order.
    dict_position: Vec<usize>,
    /// Which elements have been checked (`check_element_once`).
    checked: Vec<bool>,
    /// What the reference does not check but a user would want to know.
    pub warnings: Vec<Diagnostic>,
    /// While above zero, errors are not recorded: a value is being
    /// resolved where it is used, and was checked where it is written.
    quiet: u32,
    /// Elements being resolved, to catch a constant that refers to itself.
    resolving: Vec<usize>,
    /// What a value resolved to, by (its address, the scope's subtype,
    /// quiet); see `resolve_quietly`.
    resolved: HashMap<(usize, Option<Subtype>, bool), values::Kind>,
}

impl<'f> Checker<'f> {
    fn new(file: &'f File<'f>) -> Self {
        Checker {
            file,
            elements: Vec::with_capacity(file.items.len()),
            by_name: HashMap::with_capacity(file.items.len()),
            extensions: HashMap::new(),
            pushed: Default::default(),
            iface_indexes: Default::default(),
            load_balancer_layers: Default::default(),
            has_load_balancer: false,
            errors: Vec::new(),
            error_ranks: Vec::new(),
            rank: 0,
            calls: Vec::new(),
            walked: Default::default(),
            dict_position: Vec::new(),
            checked: Vec::new(),
            warnings: Vec::new(),
            quiet: 0,
            resolving: Vec::new(),
            resolved: HashMap::new(),
        }
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        if self.quiet == 0 {
            self.errors.push(Diagnostic::at(span, message));
            self.error_ranks.push(self.rank);
        }
    }

    /// A check the reference does not make: reported, never refusing.
    pub fn warn(&mut self, span: Span, message: impl Into<String>) {
        if self.quiet == 0 {
            self.warnings.push(Diagnostic::warning(span, message));
        }
    }

    pub fn element(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The element named `name` if it is a function.
    pub fn function(&self, name: &str) -> Option<(usize, TypeName, Subtype, &'f Function<'f>)> {
        let i = self.element(name)?;
        match self.elements[i].body {
            Body::Function(t, s, f) => Some((i, t, s, f)),
            _ => None,
        }
    }

    /// Whether the reference takes `name` where an Iface is due: an Iface,
    /// or an untyped constant (it only refuses other typed elements).
    pub fn may_be_iface(&self, name: &str) -> bool {
        self.element(name).is_some_and(|i| {
            matches!(
                self.elements[i].body,
                Body::Typed(TypeName::Iface, _) | Body::Constant(_)
            )
        })
    }

    /// Whether an element of type `ty` is registered.
    fn has_typed(&self, ty: TypeName) -> bool {
        self.elements
            .iter()
            .any(|e| matches!(e.body, Body::Typed(t, _) if t == ty))
    }

    /// Whether `name` is an element of type `ty`.
    pub fn is_typed(&self, name: &str, ty: TypeName) -> Option<usize> {
        let i = self.element(name)?;
        matches!(self.elements[i].body, Body::Typed(t, _) if t == ty).then_some(i)
    }

    /// Pass 1, as the reference's visitor: every element's name, checked
    /// and registered in file order.
    fn register(&mut self) {
        let file = self.file;
        for item in &file.items {
            let (name, body) = match item {
                Item::Integer(_) => continue,
                Item::Assignment(a) => ((a.name(), a.span()), Body::Constant(a)),
                Item::Typed(t) => {
                    let body = match (TypeName::parse(t.type_name.text), &t.subtype) {
                        (None, _) => Body::Broken,
                        (Some(ty), _) if ty.is_function() => {
                            self.error(
                                t.name.span,
                                format!("A {} needs a body: {{ ... }}", t.type_name.text),
                            );
                            Body::Broken
                        }
                        (Some(ty), None) => Body::Typed(ty, t),
                        (Some(_), Some(sub)) => {
                            self.error(
                                sub.span,
                                format!("An element of type {} has no subtype", t.type_name.text),
                            );
                            Body::Broken
                        }
                    };
                    ((Cow::Borrowed(t.name.text), t.name.span), body)
                }
                Item::Function(f) => {
                    let Some(name) = &f.name else {
                        self.error(f.span(), "Missing name of element");
                        continue;
                    };
                    let body = match (
                        TypeName::parse(f.type_name.text),
                        Subtype::parse(f.subtype.text),
                    ) {
                        (Some(ty), Some(sub)) if ty.is_function() => Body::Function(ty, sub, f),
                        // A second singleton is reported as one first.
                        (Some(ty), _) if ty.is_singleton() && self.has_typed(ty) => Body::Broken,
                        (Some(ty), _) if !ty.is_function() => {
                            self.error(
                                f.type_name.span,
                                format!(
                                    "An element of type {} is not a function",
                                    f.type_name.text
                                ),
                            );
                            Body::Broken
                        }
                        (Some(_), _) => Body::OddFunction(f),
                        (None, _) => Body::Broken,
                    };
                    ((Cow::Borrowed(name.text), name.span), body)
                }
            };
            self.register_element(item, name, body);
        }
    }

    fn register_element(
        &mut self,
        item: &'f Item<'f>,
        (name, span): (Cow<'f, str>, Span),
        body: Body<'f>,
    ) {
        if self.by_name.contains_key(name.as_ref()) {
            self.error(span, format!("Element {name} has already been defined"));
            return;
        }
        let root = name.split('.').next().unwrap_or_default();
        if root.contains('-') {
            self.error(span, format!("Invalid character (-) in name {root}"));
        } else if matches!(lower(root).as_ref(), "tcp" | "udp" | "icmp" | "ct" | "ip") {
            self.error(span, format!("Invalid name {root}"));
        }
        let type_name = match item {
            Item::Typed(t) => Some(&t.type_name),
            Item::Function(f) => Some(&f.type_name),
            _ => None,
        };
        if let Some(type_name) = type_name {
            match TypeName::parse(type_name.text) {
                None => self.error(type_name.span, format!("Undefined type {}", type_name.text)),
                Some(ty) if ty.is_singleton() => {
                    let exists = self
                        .elements
                        .iter()
                        .any(|e| matches!(e.body, Body::Typed(t, _) if t == ty));
                    if exists {
                        self.error(
                            type_name.span,
                            format!("A {} has already been defined", type_name.text),
                        );
                        // The reference keeps no second singleton.
                        return;
                    }
                }
                Some(_) => {}
            }
        }
        if let Body::Constant(a) = body {
            if a.path.len() > 1 {
                self.extensions
                    .entry(a.path[0].text)
                    .or_default()
                    .push(self.elements.len());
            }
        }
        self.by_name.insert(name.clone(), self.elements.len());
        self.elements.push(Element {
            name,
            name_span: span,
            body,
        });
    }

    /// Start a new stretch of the reference's walk (see `rank`).
    pub fn next_rank(&mut self) {
        self.rank += 1;
    }

    /// Pass 2: every element, the functions last (they need the chains
    /// the others push them onto), each list in the order the reference
    /// takes them: its Python 2.7 dict's, keyed by element name.
    fn check_elements(&mut self) {
        self.has_load_balancer = self
            .elements
            .iter()
            .any(|e| matches!(e.body, Body::Typed(TypeName::LoadBalancer, _)));
        let order = py2dict::iteration_order(self.elements.iter().map(|e| e.name.as_ref()));
        self.dict_position = vec![0; self.elements.len()];
        self.checked = vec![false; self.elements.len()];
        for (position, &i) in order.iter().enumerate() {
            self.dict_position[i] = position;
        }
        let mut functions = Vec::new();
        for i in order {
            if let Body::Function(..) | Body::OddFunction(_) = self.elements[i].body {
                functions.push(i);
            } else {
                self.check_element_once(i);
            }
        }
        // Functions come last in the reference, so their errors only
        // once the rest is clean.
        if !self.errors.is_empty() {
            return;
        }
        for i in functions {
            self.next_rank();
            match self.elements[i].body {
                Body::Function(ty, sub, f) => self.check_function(i, ty, sub, f),
                // The reference crashes there (C1b): our own message.
                Body::OddFunction(f) => self.error(
                    f.subtype.span,
                    format!("Invalid subtype {}", f.subtype.text),
                ),
                _ => {}
            }
        }
    }

    /// Element `i` (not a function) in a stretch of its own, unless it was
    /// checked already: the reference processes an element once, the first
    /// time it is needed (a Gateway needs its routes' Ifaces).
    pub fn check_element_once(&mut self, i: usize) {
        if std::mem::replace(&mut self.checked[i], true) {
            return;
        }
        self.next_rank();
        match self.elements[i].body {
            Body::Constant(a) => self.check_constant(a),
            Body::Typed(ty, t) => match ty {
                TypeName::Iface => self.check_iface(t),
                TypeName::Gateway => self.check_gateway(t),
                TypeName::Conntrack => self.check_conntrack(t),
                TypeName::LoadBalancer => self.check_load_balancer(t),
                TypeName::Syslog => self.check_syslog(t),
                TypeName::Timer => self.check_timer(t),
                TypeName::Filter | TypeName::Nat | TypeName::Rewrite => {}
            },
            Body::Function(..) | Body::OddFunction(_) | Body::Broken => {}
        }
        // What follows belongs to whoever needed this element.
        self.next_rank();
    }

    /// A constant, or an assignment that extends an element: the element
    /// must exist; the value is checked here (the extended element's
    /// checker judges whether it fits there).
    fn check_constant(&mut self, a: &'f Assignment<'f>) {
        let root = &a.path[0].text;
        if a.path.len() > 1 {
            let Some(target) = self.element(root) else {
                self.error(a.span(), format!("No element with the name {root} exists"));
                self.check_value(&a.value, None);
                return;
            };
            if let Body::Typed(..) = self.elements[target].body {
                // Typed elements check their own extensions, in context.
                return;
            }
        }
        // The reference resolves a constant's value where it is used,
        // unless it is an object, whose members it checks up front.
        if let ValueKind::Object(_) = a.value.kind {
            self.check_unique_keys(&a.value);
            let extensions = self.extensions_of(root);
            for (i, ext) in extensions.iter().enumerate() {
                let path = &ext.path[1..];
                if walk(&a.value, path).is_some() {
                    self.error(
                        ext.span(),
                        format!("Member {} has already been set", ext.name()),
                    );
                    continue;
                }
                // `x.b.c: v` needs `b` in x's object, or assigned before
                // it (shorter names first, as the reference takes them).
                let parent = &path[..path.len() - 1];
                let assigned = extensions[..i].iter().any(|e| {
                    e.path.len() < ext.path.len()
                        && walk(&e.value, &parent[e.path.len() - 1..]).is_some()
                        && e.path[1..]
                            .iter()
                            .zip(parent)
                            .all(|(x, y)| x.text == y.text)
                });
                if a.path.len() == 1
                    && !parent.is_empty()
                    && walk(&a.value, parent).is_none()
                    && !assigned
                {
                    let missing = (1..=parent.len())
                        .find(|&k| walk(&a.value, &parent[..k]).is_none())
                        .map_or(parent[0].text, |k| parent[k - 1].text);
                    self.error(
                        ext.value.span,
                        format!("Trying to add to a member ({missing}) that doesn't exist"),
                    );
                }
            }
            self.check_value(&a.value, None);
        } else if a.path.len() > 1 {
            self.check_value(&a.value, None);
        }
    }

    /// The assignments that extend element `name`, shortest name first (so
    /// `a.b: {...}` comes before `a.b.c: 1`), as the reference takes them:
    /// its dict's order, sorted (stably) by the number of name parts.
    pub fn extensions_of(&self, name: &str) -> Vec<&'f Assignment<'f>> {
        let mut found: Vec<(usize, &'f Assignment<'f>)> = self
            .extensions
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| match self.elements[i].body {
                Body::Constant(a) => Some((i, a)),
                _ => None,
            })
            .collect();
        found.sort_by_key(|(i, a)| (a.path.len(), self.dict_position.get(*i).copied()));
        found.into_iter().map(|(_, a)| a).collect()
    }

    /// Duplicate keys in the objects of an untyped value.
    fn check_unique_keys(&mut self, v: &Value) {
        if let ValueKind::Object(pairs) = &v.kind {
            let mut seen = std::collections::HashSet::new();
            for p in pairs {
                if !seen.insert(p.key.text) {
                    self.error(
                        p.key.span,
                        format!("Member {} has already been set", p.key.text),
                    );
                }
                self.check_unique_keys(&p.value);
            }
        }
    }

    /// The value of `name` (an element, or a member of one by a dotted
    /// path), as written somewhere in the file.
    pub fn lookup(&self, parts: &[Ident]) -> Option<&'f Value<'f>> {
        let root = self.element(parts[0].text)?;
        let path = &parts[1..];
        if let Some(v) = self.elements[root].body.value().and_then(|v| walk(v, path)) {
            return Some(v);
        }
        // `a.b.c` may be written as `a.b.c: v`, or as `a.b: {c: v}`.
        for k in (1..=path.len()).rev() {
            let name = super::syntax::dotted(&parts[..=k]);
            if let Some(i) = self.element(&name) {
                if let Body::Constant(a) = self.elements[i].body {
                    if let Some(v) = walk(&a.value, &path[k..]) {
                        return Some(v);
                    }
                }
            }
        }
        None
    }
}

/// The value at `path` inside `v`'s objects.
fn walk<'v, 'a>(mut v: &'v Value<'a>, path: &[Ident<'_>]) -> Option<&'v Value<'a>> {
    for key in path {
        let ValueKind::Object(pairs) = &v.kind else {
            return None;
        };
        v = &pairs.iter().find(|p| p.key.text == key.text)?.value;
    }
    Some(v)
}

/// `s` in lower case; borrowed when it is already (the usual case).
pub(crate) fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// One member of a typed element: from its object, or from an assignment
/// `element.key: value` elsewhere.
pub(crate) struct Member<'f> {
    /// As written.
    pub key: &'f Ident<'f>,
    pub lower: Cow<'f, str>,
    pub value: &'f Value<'f>,
    /// Where errors about the member go: its key in the object, or the
    /// start of the assignment.
    pub span: Span,
}

impl<'f> Member<'f> {
    pub fn of_pair(key: &'f Ident<'f>, value: &'f Value<'f>) -> Self {
        Member {
            key,
            lower: lower(key.text),
            value,
            span: key.span,
        }
    }
}

#[cfg(test)]
mod tests;
