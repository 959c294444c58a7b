//! Functions (Filter, Nat, Rewrite): their bodies' actions, calls, nested
//! functions and conditions, and the rules for functions on chains.
//!
//! The reference transpiles a called function where it is called (again at
//! every call, in the caller's scope), so a callee's errors come at its
//! first call, before the rest of the caller's body.

use super::values::{is_ipv4, is_port, Kind, Scope};
use super::{lower, Body, Checker, Subtype, TypeName};
use crate::nacl::syntax::{Action, Condition, Function, Statement, Value, ValueKind};

const SEVERITIES: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The function whose body is being checked.
#[derive(Clone, Copy)]
struct Context<'a> {
    ty: TypeName,
    ty_written: &'a str,
    scope: Scope<'a>,
}

/// The scope the reference transpiles a nested or called function's body
/// in: an IP function sees its parent's packet (so `tcp.dport` is fine in
/// an IP function inside a TCP one), its subtype named in lower case; any
/// other function sees its own, named as written.
fn inner_scope<'a>(outer: Scope<'a>, subtype: Subtype, written: &'a str) -> Scope<'a> {
    if subtype == Subtype::Ip {
        Scope {
            subtype: outer.subtype,
            written: outer.subtype.lower_name(),
        }
    } else {
        Scope { subtype, written }
    }
}

impl<'f> Checker<'f> {
    pub(super) fn check_function(
        &mut self,
        i: usize,
        ty: TypeName,
        subtype: Subtype,
        f: &'f Function<'f>,
    ) {
        let errors_before = self.errors.len();
        let cx = Context {
            ty,
            ty_written: f.type_name.text,
            scope: Scope {
                subtype,
                written: f.subtype.text,
            },
        };
        self.calls.push(i);
        self.check_body(cx, &f.body);
        self.calls.pop();
        // The reference judges a function on a chain after its body.
        if self.errors.len() > errors_before {
            return;
        }
        if ty == TypeName::Filter && self.pushed.contains(&i) {
            if subtype != Subtype::Ip {
                self.error(f.span(), "Only a function of subtype IP can be pushed onto an Iface's chain. However, you can create and call Filters of any subtype inside an IP Filter");
            } else {
                let verdict = matches!(f.body.last(), Some(Statement::Action(Action { name, args: None }))
                    if name.text == "accept" || name.text == "drop");
                if !verdict {
                    self.error(
                        f.span(),
                        "Missing default verdict at the end of this Filter",
                    );
                }
            }
        }
    }

    fn check_body(&mut self, cx: Context<'_>, body: &'f [Statement<'f>]) {
        for s in body {
            match s {
                Statement::Action(a) => self.check_action(cx, a),
                Statement::If(branch) => {
                    self.check_condition(cx, &branch.condition);
                    self.check_body(cx, &branch.then);
                    if let Some(otherwise) = &branch.otherwise {
                        self.check_body(cx, otherwise);
                    }
                }
                Statement::Function(inner) => self.check_nested(cx, inner),
            }
        }
    }

    fn check_nested(&mut self, cx: Context<'_>, f: &'f Function<'f>) {
        let ty = TypeName::parse(f.type_name.text);
        if ty != Some(cx.ty) {
            self.error(
                f.type_name.span,
                format!(
                    "You cannot create a function of type {} inside a function of type {}",
                    f.type_name.text, cx.ty_written
                ),
            );
        }
        let Some(subtype) = Subtype::parse(f.subtype.text) else {
            self.error(
                f.subtype.span,
                format!(
                    "You cannot create a function of subtype {} inside a function of subtype {}",
                    f.subtype.text, cx.scope.written
                ),
            );
            return;
        };
        if !cx.scope.subtype.may_contain(subtype) {
            self.error(
                f.subtype.span,
                format!(
                    "You cannot create a function of subtype {} inside a function of subtype {}",
                    f.subtype.text, cx.scope.written
                ),
            );
        }
        let inner = Context {
            scope: inner_scope(cx.scope, subtype, f.subtype.text),
            ..cx
        };
        self.check_body(inner, &f.body);
    }

    fn check_action(&mut self, cx: Context<'_>, a: &'f Action<'f>) {
        let name = &a.name.text;
        let lower = super::lower(name);
        let args: &'f [Value<'f>] = a.args.as_deref().unwrap_or(&[]);
        let legal: &[&str] = match cx.ty {
            TypeName::Nat => &["dnat", "snat", "log", "syslog"],
            _ => &["accept", "drop", "log", "syslog"],
        };
        if !["accept", "drop", "log", "syslog", "snat", "dnat"].contains(&lower.as_ref()) {
            self.check_call(cx, a);
            return;
        }
        if cx.ty == TypeName::Rewrite {
            // The reference has no list of legal actions for a Rewrite and
            // crashes (KeyError) on any action: a real build fails.
            self.error(
                a.name.span,
                format!(
                    "Error transpiling action {name}: A function of type {} can have no actions (the NaCl transpiler fails on it)",
                    cx.ty_written
                ),
            );
            return;
        }
        if !legal.contains(&lower.as_ref()) {
            self.error(
                a.name.span,
                format!(
                    "Error transpiling action {name}: Legal actions for a function of type {} are: {}",
                    cx.ty_written,
                    legal.join(", ")
                ),
            );
            return;
        }
        match lower.as_ref() {
            "accept" | "drop" if !args.is_empty() => {
                let article = if lower == "accept" {
                    "An accept"
                } else {
                    "A drop"
                };
                self.error(a.name.span, format!("{article} action takes no parameters"));
            }
            "log" => {
                for x in args {
                    self.printable(cx, x);
                }
            }
            "syslog" => {
                if args.len() < 2 {
                    self.error(a.name.span, "Too few arguments (syslog takes at least 2)");
                    return;
                }
                let severity = args[0].text().to_ascii_lowercase();
                if args[0].as_name().is_none() || !SEVERITIES.contains(&severity.as_str()) {
                    self.error(
                        args[0].span,
                        format!(
                            "Invalid syslog severity level. Valid severity levels are {}",
                            // The reference lists them in its (Python 2)
                            // dict's order.
                            "info, debug, notice, emerg, err, crit, warning, alert"
                        ),
                    );
                }
                for x in &args[1..] {
                    self.printable(cx, x);
                }
            }
            "snat" | "dnat" => {
                if args.is_empty() {
                    self.error(a.name.span, format!("No arguments provided to {lower}"));
                    return;
                }
                self.expect_kind(
                    &format!("{lower} address"),
                    &args[0],
                    "an IPv4 address",
                    is_ipv4,
                );
                if let Some(port) = args.get(1) {
                    self.expect_kind(&format!("{lower} port"), port, "a port number", is_port);
                }
                for x in args.iter().skip(2) {
                    self.check_value(x, None);
                }
            }
            _ => {}
        }
    }

    /// A `log` or `syslog` argument: a string, or a packet property.
    fn printable(&mut self, cx: Context<'_>, x: &'f Value<'f>) {
        match &x.kind {
            ValueKind::Str(_) => {}
            ValueKind::Name(parts) if parts.len() > 1 => {
                let root = lower(parts[0].text);
                if ["tcp", "udp", "ip", "icmp", "ct"].contains(&root.as_ref()) {
                    self.check_value(x, Some(cx.scope));
                } else {
                    self.error(x.span, format!("{} is not a valid protocol", parts[0].text));
                }
            }
            _ => self.error(x.span, "This value can not be printed"),
        }
    }

    /// A call of another function by name: same type, allowed subtype; the
    /// callee's body is walked here, as the reference transpiles it here.
    fn check_call(&mut self, cx: Context<'_>, a: &'f Action<'f>) {
        let name = &a.name.text;
        if let Some(i) = self.element(name) {
            if let Body::OddFunction(f) = self.elements[i].body {
                self.error(
                    a.name.span,
                    format!(
                        "Cannot call a function of subtype {} inside a function of subtype {}",
                        f.subtype.text, cx.scope.written
                    ),
                );
                return;
            }
        }
        let Some((callee, ty, subtype, f)) = self.function(name) else {
            self.error(
                a.name.span,
                format!("Couldn't identify action or function name {name}"),
            );
            return;
        };
        if a.args.as_ref().is_some_and(|args| !args.is_empty()) {
            self.error(a.name.span, "A function call takes no parameters");
        } else if ty != cx.ty {
            self.error(
                a.name.span,
                format!(
                    "Error transpiling call to {name}: A function of type {} can only call functions of the same type",
                    cx.ty_written
                ),
            );
        } else if !cx.scope.subtype.may_contain(subtype) {
            self.error(
                a.name.span,
                format!(
                    "Cannot call a function of subtype {} inside a function of subtype {}",
                    f.subtype.text, cx.scope.written
                ),
            );
        } else if self.calls.contains(&callee) {
            // The reference recurses until Python gives up (RuntimeError:
            // maximum recursion depth exceeded): a real build fails.
            self.error(
                a.name.span,
                format!("Function {name} calls itself (directly or through other functions): the call never ends"),
            );
        } else {
            self.walk_callee(
                callee,
                ty,
                f,
                inner_scope(cx.scope, subtype, f.subtype.text),
            );
        }
    }

    /// The body of function `i` as the reference transpiles it at a call,
    /// its errors in a stretch of their own between the caller's.
    fn walk_callee(&mut self, i: usize, ty: TypeName, f: &'f Function<'f>, scope: Scope<'_>) {
        // A callee's scope follows from its subtype there (`inner_scope`).
        if !self.walked.insert((i, scope.subtype)) {
            return;
        }
        let cx = Context {
            ty,
            ty_written: f.type_name.text,
            scope,
        };
        self.next_rank();
        self.calls.push(i);
        self.check_body(cx, &f.body);
        self.calls.pop();
        self.next_rank();
    }

    fn check_condition(&mut self, cx: Context<'_>, c: &'f Condition<'f>) {
        match c {
            Condition::Value(v) => {
                // The reference transpiles a lone operand without the
                // function's subtype: a packet property there fails.
                if let Some(parts) = v.as_name() {
                    let object = super::lower(parts[0].text);
                    if parts.len() > 1
                        && self.element(parts[0].text).is_none()
                        && matches!(object.as_ref(), "tcp" | "udp" | "ip" | "icmp" | "ct")
                    {
                        self.error(
                            v.span,
                            format!(
                                "Trying to transpile protocol object ({}), but the function's subtype has not been given",
                                parts[0].text
                            ),
                        );
                        return;
                    }
                }
                self.check_value(v, Some(cx.scope));
            }
            Condition::Not(_, inner) => self.check_condition(cx, inner),
            Condition::Logical { lhs, rhs, .. } => {
                self.check_condition(cx, lhs);
                self.check_condition(cx, rhs);
            }
            Condition::Comparison { lhs, op, rhs } => {
                let left = self.check_value(lhs, Some(cx.scope));
                let right = self.check_value(rhs, Some(cx.scope));
                if left == Kind::Unknown || right == Kind::Unknown {
                    return;
                }
                // As the reference: ranges, lists and objects resolve to
                // lists, and need `in` exactly (`IN` is refused there); a
                // single CIDR needs `in` in any case; otherwise `in` is wrong.
                let is_list = |k: Kind| matches!(k, Kind::Range | Kind::Object | Kind::List);
                if is_list(left) || is_list(right) {
                    if op.text != "in" {
                        self.error(
                            op.span,
                            format!(
                                "Invalid operator ({}). Only the 'in' operator is valid when comparing a value to a range, cidr, list or object",
                                op.text
                            ),
                        );
                    } else if is_list(left) {
                        self.error(lhs.span, "The left hand side of a comparison can not resolve to a set of values, e.g. a range, cidr, list or object");
                    }
                } else if right == Kind::Cidr {
                    if !op.text.eq_ignore_ascii_case("in") {
                        self.error(
                            op.span,
                            format!(
                                "Invalid operator ({}). Only the 'in' operator is valid when comparing a property to a range, cidr, list or object",
                                op.text
                            ),
                        );
                    }
                } else if op.text.eq_ignore_ascii_case("in") {
                    self.error(op.span, "The 'in' operator can only be used when comparing a property to a range, cidr, list or object");
                }
            }
        }
    }
}
